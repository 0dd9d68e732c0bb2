// The docker CLI's connection flags, for the commands that talk to a Docker daemon (`pack`, `load`, `inventory`):
// -H/--host, --context, --tls, --tlsverify, --tlscacert, --tlscert, --tlskey, turned into an endpoint.
import type { Argv } from 'yargs';
import { resolveEndpoint, type EndpointFlags, type EngineEndpoint } from '../engine/endpoint.js';

/** The flags as yargs parses them: the docker CLI's, unchanged. */
export type DaemonArgs = EndpointFlags;

const GROUP = 'Docker daemon:';

export function withDaemonOptions<T>(y: Argv<T>): Argv<T & DaemonArgs> {
  return y
    .option('host', { alias: 'H', type: 'string', group: GROUP, describe: 'the daemon: unix:///PATH or tcp://HOST:PORT (default: DOCKER_HOST, else the Docker context, else unix:///var/run/docker.sock)' })
    .option('context', { type: 'string', group: GROUP, describe: 'a Docker context (`docker context ls`); beats DOCKER_HOST, DOCKER_CONTEXT and `docker context use`' })
    .option('tls', { type: 'boolean', group: GROUP, describe: 'TLS without verifying the daemon (default: DOCKER_TLS); implied by --tlsverify' })
    .option('tlsverify', { type: 'boolean', group: GROUP, describe: 'TLS, verifying the daemon against the CA (default: DOCKER_TLS_VERIFY)' })
    .option('tlscacert', { type: 'string', group: GROUP, describe: 'trust daemon certificates signed by this CA only (default: $DOCKER_CERT_PATH/ca.pem, ~/.docker/ca.pem)' })
    .option('tlscert', { type: 'string', group: GROUP, describe: 'client certificate (default: $DOCKER_CERT_PATH/cert.pem, ~/.docker/cert.pem)' })
    .option('tlskey', { type: 'string', group: GROUP, describe: 'client key (default: $DOCKER_CERT_PATH/key.pem, ~/.docker/key.pem)' }) as Argv<T & DaemonArgs>;
}

/** daemonEndpoint chooses the daemon as the docker CLI would with these flags; a bad choice is a usage error. */
export function daemonEndpoint(args: DaemonArgs): EngineEndpoint {
  return resolveEndpoint({
    ...(args.host !== undefined ? { host: args.host } : {}),
    ...(args.context !== undefined ? { context: args.context } : {}),
    ...(args.tls !== undefined ? { tls: args.tls } : {}),
    ...(args.tlsverify !== undefined ? { tlsverify: args.tlsverify } : {}),
    ...(args.tlscacert !== undefined ? { tlscacert: args.tlscacert } : {}),
    ...(args.tlscert !== undefined ? { tlscert: args.tlscert } : {}),
    ...(args.tlskey !== undefined ? { tlskey: args.tlskey } : {}),
  });
}
