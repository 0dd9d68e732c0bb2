// The version ferry reports and records in the bundles it writes.
export const VERSION = '0.1.0';
export const CREATOR = `ferry ${VERSION}`;
