/** The package version, reported in SERVER_SOFTWARE (kept equal to package.json by a test). */
export const VERSION = '0.1.0';
