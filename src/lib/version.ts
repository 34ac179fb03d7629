export const RKT_VERSION = '1.30.0+ts.0.1.0';
/** The appc spec version whose manifests we write and accept. */
export const APPC_VERSION = '0.8.11';
