// Names of images held in local files, as skopeo spells them: TRANSPORT:PATH[:REF], split at the first ':'.
import { FerryError } from '../ui/errors.js';

/** Location is a file or directory and the reference asked of it (none: everything it holds). */
export interface Location {
  location: string;
  ref?: string;
}

/**
 * splitLocation strips prefix (when present) and splits the rest at its first ':', as skopeo does on Linux:
 * `oci:/srv/layout:nginx:1.27` is the layout /srv/layout and the reference nginx:1.27.
 */
export function splitLocation(asked: string, prefix: string): Location {
  const rest = asked.startsWith(prefix) ? asked.slice(prefix.length) : asked;
  const colon = rest.indexOf(':');
  const location = colon < 0 ? rest : rest.slice(0, colon);
  const ref = colon < 0 ? '' : rest.slice(colon + 1);
  if (location === '') {
    throw new FerryError('USAGE', `"${asked}" names no file`, { hint: `write ${prefix}PATH or ${prefix}PATH:REFERENCE` });
  }
  return ref === '' ? { location } : { location, ref };
}
