/// The examples' one assertion helper, loaded by each docs/examples/*.fsx (`#load "lib/Check.fsx"`).
/// ./test.sh passes an example only when it exits 0 and printed a `checked: ` line. `check` prints one when a value
/// the script computed is what it should be, and exits 1 when it is not.
module Check

let check (what: string) (ok: bool) =
    if ok then
        printfn "checked: %s" what
    else
        eprintfn "check failed: %s" what
        exit 1
