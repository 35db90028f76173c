using System.Reflection;
using PublicApiGenerator;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>The public surface of the C# facade (assembly FmriGlm), approved: a change shows up as a reviewed diff of
/// tests/api/FmriGlm.approved.txt (docs/architecture.md, "Public API approval").</summary>
public class PublicApiTests
{
    private static string ApiDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "api");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/api not found above the test binary");
    }

    [Fact]
    public void FmriGlmPublicSurfaceEqualsTheApprovedFile()
    {
        Assembly assembly = typeof(FmriGlm.NiftiImage).Assembly;
        var name = assembly.GetName().Name;
        var generated = assembly.GeneratePublicApi(new ApiGeneratorOptions { IncludeAssemblyAttributes = false })
            .Replace("\r\n", "\n").TrimEnd() + "\n";
        var dir = ApiDir();
        var approvedPath = Path.Combine(dir, $"{name}.approved.txt");
        var receivedPath = Path.Combine(dir, $"{name}.received.txt");
        if (Environment.GetEnvironmentVariable("FMRIGLM_ACCEPT_API") == "1")
        {
            File.WriteAllText(approvedPath, generated);
            File.Delete(receivedPath);
            return;
        }
        var approved = File.Exists(approvedPath) ? File.ReadAllText(approvedPath).Replace("\r\n", "\n") : "";
        if (approved != generated)
        {
            File.WriteAllText(receivedPath, generated);
            Assert.Fail($"the public API of {name} differs from {approvedPath}: review `diff {approvedPath} {receivedPath}`, " +
                        "then accept it by copying the received file over the approved one (or run the tests with FMRIGLM_ACCEPT_API=1)");
        }
        File.Delete(receivedPath);
    }
}
