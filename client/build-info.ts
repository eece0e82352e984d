// Identity of the bundle, set by client/build.ts (esbuild `define`); 'dev' when run unbundled.
declare const __PULSEBOARD_BUILD_ID__: string | undefined;

export const BUILD_ID: string = typeof __PULSEBOARD_BUILD_ID__ === 'string' ? __PULSEBOARD_BUILD_ID__ : 'dev';
