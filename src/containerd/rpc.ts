// One gRPC channel to containerd's socket and typed unary / server-stream / bidi calls over it, with the
// namespace (and lease) headers on every call and gRPC failures turned into FerryErrors that name the socket.
import * as grpc from '@grpc/grpc-js';
import { fromJSON, type PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { FerryError } from '../ui/errors.js';
import { PROTO_FILES } from './protos.js';

let definitions: PackageDefinition | undefined;

/** packageDefinition parses the embedded proto text once, in memory: dist/ carries no .proto files. */
function packageDefinition(): PackageDefinition {
  if (!definitions) {
    const root = new protobuf.Root();
    for (const text of PROTO_FILES) protobuf.parse(text, root);
    // int64 sizes and offsets stay below 2^53; enums as their names; absent proto3 fields as their defaults.
    definitions = fromJSON(root.toJSON(), { longs: Number, enums: String, defaults: true, oneofs: false });
  }
  return definitions;
}

function method(service: string, name: string): grpc.MethodDefinition<object, object> {
  const svc = packageDefinition()[service] as grpc.ServiceDefinition | undefined;
  const m = svc?.[name];
  if (!m) throw new Error(`no ${service}/${name} in the embedded protos`);
  return m as grpc.MethodDefinition<object, object>;
}

/** grpcCode is the gRPC status code behind an error (a FerryError from this module keeps it as its cause). */
export function grpcCode(err: unknown): grpc.status | undefined {
  const seen = err instanceof FerryError ? err.cause : err;
  const code = (seen as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' && seen instanceof Error ? (code as grpc.status) : undefined;
}

export const isNotFound = (err: unknown): boolean => grpcCode(err) === grpc.status.NOT_FOUND;
export const isAlreadyExists = (err: unknown): boolean => grpcCode(err) === grpc.status.ALREADY_EXISTS;

/** A refused, missing or dropped socket, as opposed to containerd answering UNAVAILABLE itself (a locked ref). */
const CONNECTION = /No connection established|connect E[A-Z]+|Connection dropped|ECONNRESET|EPIPE|Failed to connect/;

function connectionHint(details: string): string {
  if (/EACCES|EPERM/.test(details)) return 'containerd\'s socket is normally only open to root: run ferry as root (or with sudo)';
  return 'start containerd (systemctl start containerd), or set CONTAINERD_ADDRESS to the socket it listens on';
}

/** toFerry maps a failed call; what says which operation failed ("content write sha256:…"). */
export function toFerry(err: unknown, address: string, what: string): FerryError {
  if (err instanceof FerryError) return err;
  const e = err as Partial<grpc.ServiceError>;
  const details = e.details ?? (err instanceof Error ? err.message : String(err));
  if (e.code === grpc.status.UNAVAILABLE && CONNECTION.test(details)) {
    const why = /ENOENT/.test(details) ? 'no socket there' : /ECONNREFUSED/.test(details) ? 'nothing listens there' : /EACCES|EPERM/.test(details) ? 'permission denied' : details;
    return new FerryError('CONTAINERD_UNREACHABLE', `cannot reach containerd at ${address}: ${why}`, { hint: connectionHint(details), cause: err });
  }
  const hint =
    e.code === grpc.status.UNIMPLEMENTED
      ? 'this containerd lacks that service or method; ferry needs containerd 1.6 or later'
      : 'containerd refused it; its log (journalctl -u containerd) may say more';
  return new FerryError('CONTAINERD_ERROR', `containerd (${address}): ${what}: ${details}`, { hint, cause: err });
}

/** abortReason is what an aborted operation rejects with: the signal's own reason when it is an Error. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException('the operation was aborted', 'AbortError');
}

export interface RpcOptions {
  address: string;
  namespace: string;
  lease?: string;
}

/** Rpc is one channel plus the headers for one namespace and optional lease; withLease shares the channel. */
export class Rpc {
  readonly address: string;
  readonly namespace: string;
  readonly lease: string | undefined;
  private readonly channel: grpc.Client;

  constructor(opts: RpcOptions, channel?: grpc.Client) {
    this.address = opts.address;
    this.namespace = opts.namespace;
    this.lease = opts.lease;
    // containerd's own clients accept 16 MiB answers; grpc-js's 4 MiB default is too small for big image lists.
    this.channel =
      channel ??
      new grpc.Client(`unix://${opts.address}`, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': 16 << 20,
        'grpc.max_send_message_length': 16 << 20,
      });
  }

  withLease(lease: string | undefined): Rpc {
    return new Rpc({ address: this.address, namespace: this.namespace, ...(lease ? { lease } : {}) }, this.channel);
  }

  close(): void {
    this.channel.close();
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('containerd-namespace', this.namespace);
    if (this.lease) md.set('containerd-lease', this.lease);
    return md;
  }

  unary<Res>(service: string, name: string, req: object, what: string, signal?: AbortSignal): Promise<Res> {
    const m = method(service, name);
    return new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const onAbort = (): void => call.cancel();
      const call = this.channel.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, this.metadata(), {}, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted) reject(abortReason(signal));
        else if (err) reject(toFerry(err, this.address, what));
        else resolve(res as Res);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async *serverStream<Res>(service: string, name: string, req: object, what: string, signal?: AbortSignal): AsyncGenerator<Res> {
    const m = method(service, name);
    const call = this.channel.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, req, this.metadata(), {});
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const msg of call) yield msg as Res;
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw toFerry(err, this.address, what);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  /**
   * bidi opens a two-way stream; the caller owns its flow (see content-write.ts) and writes messages it encoded
   * with encode: a queued message then holds its own copy of the bytes, never a buffer its source may reuse.
   */
  bidi(service: string, name: string): { call: grpc.ClientDuplexStream<Buffer, object>; encode: (msg: object) => Buffer } {
    const m = method(service, name);
    const call = this.channel.makeBidiStreamRequest<Buffer, object>(m.path, (b) => b, m.responseDeserialize, this.metadata(), {});
    return { call, encode: m.requestSerialize };
  }
}
