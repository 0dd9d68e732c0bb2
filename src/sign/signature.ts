// Ed25519 signatures (node's crypto) over ferry's documents: a bundle's ferry.json (which names every blob by
// digest and every image by name), inventories and receipts. Keys are PEM files; a key is known by its ID.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { writeAtomic } from '../files/atomic.js';
import { FerryError } from '../ui/errors.js';

export const SIGNATURE_MEDIA_TYPE = 'application/vnd.ferry.signature.v1+json';
/** The entry beside ferry.json that signs it. */
export const BUNDLE_SIGNATURE = 'ferry.sig';
const MAX_SIGNATURE_BYTES = 64 << 10;

export interface SignatureDoc {
  mediaType: typeof SIGNATURE_MEDIA_TYPE;
  algorithm: 'ed25519';
  /** sha256 of the public key (SPKI DER): which key signed. */
  keyId: string;
  /** What was signed: ferry.json in a bundle, or a report's file name. */
  signed: string;
  /** base64 of the signature over the exact bytes signed. */
  signature: string;
}

export interface Signer {
  keyId: string;
  sign(bytes: Buffer, what: string): SignatureDoc;
}

export interface Verifier {
  keyId: string;
  path: string;
  key: KeyObject;
}

function keyIdOf(pub: KeyObject): string {
  return `sha256:${createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new FerryError('USAGE', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as NodeJS.ErrnoException).code}`, {
      hint: 'make a key pair with `ferry key generate NAME`',
    });
  }
}

export async function loadSigner(path: string): Promise<Signer> {
  const pem = await readKeyFile(path, 'private key');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new FerryError('USAGE', `${path} is not a PEM private key`, { hint: 'give the NAME.key file `ferry key generate` wrote (NAME.pub is the public half)' });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new FerryError('USAGE', `${path} is a ${key.asymmetricKeyType} key; ferry signs with Ed25519`, { hint: 'make one with `ferry key generate NAME`' });
  const keyId = keyIdOf(createPublicKey(key));
  return {
    keyId,
    sign: (bytes, what) => ({ mediaType: SIGNATURE_MEDIA_TYPE, algorithm: 'ed25519', keyId, signed: what, signature: sign(null, bytes, key).toString('base64') }),
  };
}

export async function loadVerifier(path: string): Promise<Verifier> {
  const pem = await readKeyFile(path, 'public key');
  // node would derive the public half from a private key; refusing keeps private keys off the far side.
  if (pem.includes('PRIVATE KEY')) throw new FerryError('USAGE', `${path} is a private key; give the public half (NAME.pub) to check signatures`, { hint: 'the private key stays with whoever signs' });
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new FerryError('USAGE', `${path} is not a PEM public key`, { hint: 'give the NAME.pub file `ferry key generate` wrote' });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new FerryError('USAGE', `${path} is a ${key.asymmetricKeyType} key; ferry signatures are Ed25519`, { hint: 'make a key pair with `ferry key generate NAME`' });
  return { keyId: keyIdOf(key), path, key };
}

/**
 * checkSignature refuses, as an invalid bundle or document, anything not signed by the verifier's key over exactly
 * these bytes. `sig` is the signature document's bytes (undefined: unsigned).
 */
export function checkSignature(verifier: Verifier, signed: Buffer, sig: Buffer | undefined, where: string, entry: string): void {
  const refuse = (why: string, hint: string): never => {
    throw new FerryError('BUNDLE_INVALID', `${where}: ${why}; nothing was trusted`, { hint });
  };
  if (!sig) return refuse(`is not signed (no ${entry})`, 'ask for a bundle packed with --sign, or leave out --require-signature/--key');
  if (sig.length > MAX_SIGNATURE_BYTES) return refuse(`${entry} is ${sig.length} bytes, too large for a signature`, 'the signature was replaced; get the file again');
  let doc: Partial<SignatureDoc>;
  try {
    doc = JSON.parse(sig.toString('utf8')) as Partial<SignatureDoc>;
  } catch {
    return refuse(`${entry} is not a signature document`, 'the signature was damaged or replaced; get the file again');
  }
  if (doc.mediaType !== SIGNATURE_MEDIA_TYPE || doc.algorithm !== 'ed25519' || typeof doc.signature !== 'string' || typeof doc.keyId !== 'string') {
    return refuse(`${entry} is not a ferry Ed25519 signature`, 'the signature was damaged or replaced; get the file again');
  }
  if (doc.keyId !== verifier.keyId) {
    return refuse(`is signed by another key (${doc.keyId.slice(0, 23)}…), not ${verifier.path} (${verifier.keyId.slice(0, 23)}…)`, 'check which key the sender signs with');
  }
  let ok = false;
  try {
    ok = verify(null, signed, verifier.key, Buffer.from(doc.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) refuse(`the signature in ${entry} does not match: the signed content was altered`, 'do not use it; get the file again from its sender');
}

/** generateKeys writes NAME.key (private, mode 0600) and NAME.pub; it never overwrites a key. */
export async function generateKeys(base: string): Promise<{ privatePath: string; publicPath: string; keyId: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privatePath = `${base}.key`;
  const publicPath = `${base}.pub`;
  await writeNew(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  try {
    await writeNew(publicPath, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
  } catch (err) {
    await rm(privatePath, { force: true });
    throw err;
  }
  return { privatePath, publicPath, keyId: keyIdOf(publicKey) };
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FerryError('USAGE', `cannot write ${path}: ${code === 'EEXIST' ? 'it exists (ferry does not overwrite keys)' : code}`, { hint: 'choose another NAME' });
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** signaturePath is where a report's detached signature lives: FILE.sig. */
export function signaturePath(path: string): string {
  return `${path}.sig`;
}

/** writeDetached writes FILE.sig for a report, beside it. */
export async function writeDetached(path: string, doc: SignatureDoc): Promise<void> {
  await writeAtomic(signaturePath(path), `${JSON.stringify(doc)}\n`);
}
