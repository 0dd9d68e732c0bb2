// checkPackPlatforms: with --platform, every image pack takes must be of one of those platforms, whatever its source.
// A source that holds one platform per name (a Docker daemon, a docker-save archive) hands over what it has; taking
// it anyway would write an amd64 image into a bundle asked for arm64, and the far side would find out a week later.
import { formatPlatform, platformMatches, type Platform } from '../image/platform.js';
import { familiarReference, parseReference } from '../image/reference.js';
import type { Resolved } from '../sources/source.js';
import { FerryError } from '../ui/errors.js';

/** checkPackPlatforms refuses (exit 1) the first resolved image whose platform is none of `wanted`; none wanted, none refused. */
export function checkPackPlatforms(resolved: Resolved, wanted: readonly Platform[], where?: string): void {
  if (wanted.length === 0) return;
  for (const img of resolved.images) {
    if (wanted.some((w) => platformMatches(w, img.platform))) continue;
    const asked = wanted.map(formatPlatform).join(' or ');
    // An archive asked for whole holds images the name does not say: name the one refused too.
    const ref = img.refs[0] !== undefined && !img.asked.includes(familiarReference(parseReference(img.refs[0]))) ? ` (${familiarReference(parseReference(img.refs[0]))})` : '';
    throw new FerryError('IMAGE_NOT_FOUND', `${img.asked}${ref}${where ? ` in ${where}` : ''} is a ${formatPlatform(img.platform)} image, not ${asked} (--platform); nothing was written`, {
      hint: `a daemon or archive holds one platform per name: get the ${asked} image there first (docker pull --platform …), pack it from its registry (docker://…), or leave out --platform`,
    });
  }
}
