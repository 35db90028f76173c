namespace FmriGlm;

/// <summary>The HRF kernels of nilearn's <c>hemodynamic_models</c>, sampled every t_r / oversampling seconds over
/// [0, time_length] shifted by onset; usable as, or inside, a <see cref="FirstLevelDesignOptions.UserHrf"/>.</summary>
public static class HrfKernels
{
    /// <summary>SPM's canonical HRF (nilearn <c>spm_hrf</c>), normalised to sum 1.</summary>
    public static double[] Spm(double tr, int oversampling = 50, double timeLength = 32, double onset = 0) =>
        Core.Hrf.spmKernel(tr, oversampling, timeLength, onset);

    /// <summary>Glover's HRF (nilearn <c>glover_hrf</c>), normalised to sum 1.</summary>
    public static double[] Glover(double tr, int oversampling = 50, double timeLength = 32, double onset = 0) =>
        Core.Hrf.gloverKernel(tr, oversampling, timeLength, onset);

    /// <summary>Time derivative of the SPM HRF (nilearn <c>spm_time_derivative</c>).</summary>
    public static double[] SpmTimeDerivative(double tr, int oversampling = 50, double timeLength = 32, double onset = 0) =>
        Core.Hrf.spmTimeDerivative(tr, oversampling, timeLength, onset);

    /// <summary>Dispersion derivative of the SPM HRF (nilearn <c>spm_dispersion_derivative</c>).</summary>
    public static double[] SpmDispersionDerivative(double tr, int oversampling = 50, double timeLength = 32, double onset = 0) =>
        Core.Hrf.spmDispersionDerivative(tr, oversampling, timeLength, onset);

    /// <summary>Time derivative of the Glover HRF (nilearn <c>glover_time_derivative</c>).</summary>
    public static double[] GloverTimeDerivative(double tr, int oversampling = 50, double timeLength = 32, double onset = 0) =>
        Core.Hrf.gloverTimeDerivative(tr, oversampling, timeLength, onset);

    /// <summary>Dispersion derivative of the Glover HRF (nilearn <c>glover_dispersion_derivative</c>).</summary>
    public static double[] GloverDispersionDerivative(double tr, int oversampling = 50, double timeLength = 32, double onset = 0) =>
        Core.Hrf.gloverDispersionDerivative(tr, oversampling, timeLength, onset);
}
