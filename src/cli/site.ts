// `ferry site`: the connected side's catalog of sites: add one, list them, show what ferry believes one holds, and
// import the inventories and receipts that came back from it.
import type { Argv, CommandModule } from 'yargs';
import { Catalog, type SiteKind } from '../catalog/catalog.js';
import { sha256Of } from '../image/digest.js';
import { documentBytes, readReport, type Report } from '../sync/documents.js';
import { loadVerifier } from '../sign/signature.js';
import { siteRecords, siteState } from '../sync/site-state.js';
import { FerryError } from '../ui/errors.js';
import { printJson } from '../ui/output.js';
import { formatBytes } from '../ui/progress.js';

interface SiteArgs {
  name?: string;
  files?: string[];
  kind?: SiteKind;
  note?: string;
  site?: string;
  'require-signature'?: string;
  json?: boolean;
  quiet?: boolean;
}

export function siteCommand(): CommandModule<object, SiteArgs> {
  return {
    command: 'site <command>',
    describe: 'the catalog of sites: add, list, show, import inventories and receipts',
    builder: (y: Argv) =>
      y
        .command<SiteArgs>({
          command: 'add <name>',
          describe: 'add a site to plan bundles for',
          builder: (a) =>
            a
              .positional('name', { type: 'string', demandOption: true })
              .option('kind', { choices: ['docker-daemon', 'registry', 'containerd'] as const, default: 'docker-daemon' as SiteKind, describe: 'what the site loads bundles into' })
              .option('note', { type: 'string', describe: 'a free description' }),
          handler: (a) => withCatalog((c) => {
            const site = c.addSite(a.name!, a.kind ?? 'docker-daemon', a.note);
            if (a.json) printJson(site);
            else if (!a.quiet) process.stderr.write(`Added site ${site.name} (${site.kind}) to ${c.path}\n`);
          }),
        })
        .command<SiteArgs>({
          command: 'list',
          describe: 'list the sites',
          handler: (a) => withCatalog((c) => {
            const sites = c.sites();
            if (a.json) return printJson({ catalog: c.path, sites });
            if (sites.length === 0) return void process.stdout.write(`No sites in ${c.path}; add one with \`ferry site add NAME\`\n`);
            for (const s of sites) process.stdout.write(`${s.name}\t${s.kind}\t${s.bundles} bundle(s)\t${s.inventories} inventor${s.inventories === 1 ? 'y' : 'ies'}\t${s.receipts} receipt(s)\t${s.last ?? s.created}\n`);
          }),
        })
        .command<SiteArgs>({
          command: 'show <name>',
          describe: 'what ferry knows and believes a site holds',
          builder: (a) => a.positional('name', { type: 'string', demandOption: true }),
          handler: (a) => withCatalog((c) => {
            const site = c.requireSite(a.name!);
            const records = c.records(site.name);
            const counting = new Set(siteRecords(c, site.name).map((r) => r.record.seq));
            const believed = siteState(c, site.name);
            const confirmed = siteState(c, site.name, { confirmedOnly: true });
            const plan = {
              layerChains: believed.chains.size,
              blobs: believed.blobs.size,
              confirmedLayerChains: confirmed.chains.size,
              confirmedBlobs: confirmed.blobs.size,
            };
            if (a.json) return printJson({ site, records: records.map((r) => ({ seq: r.seq, kind: r.kind, ref: r.ref, created: r.created, recorded: r.recorded, path: r.path, operation: r.operation, bundles: r.bundles, summary: r.summary, counts: counting.has(r.seq) })), plan });
            process.stdout.write(`Site ${site.name} (${site.kind})${site.note ? `: ${site.note}` : ''}, added ${site.created}\n`);
            for (const r of records) {
              const s = r.summary;
              const what =
                r.kind === 'bundle'
                  ? `bundle ${r.ref}: ${s.images ?? 0} image(s), ${s.layers ?? 0} layer(s), ${formatBytes(s.bytes ?? 0)}, relies on ${s.reliesOn ?? 0}${r.path ? ` (${r.path})` : ''}`
                  : r.kind === 'receipt'
                    ? `receipt of ${r.operation} of ${r.bundles.join(', ')}: ${s.images ?? 0} image(s), ${s.failed ?? 0} failed`
                    : `inventory: ${s.images ?? 0} image(s), ${s.layers ?? 0} layer(s)`;
              process.stdout.write(`  ${counting.has(r.seq) ? '*' : ' '} ${r.created}  ${what}\n`);
            }
            process.stdout.write(`Planning assumes ${site.kind !== 'docker-daemon' ? `${plan.blobs} blob(s)` : `${plan.layerChains} layer chain(s)`} (${site.kind !== 'docker-daemon' ? plan.confirmedBlobs : plan.confirmedLayerChains} confirmed by inventories or receipts); * marks the records that count\n`);
          }),
        })
        .command<SiteArgs>({
          command: 'import <files..>',
          describe: 'import inventories and receipts that came back from a site',
          builder: (a) =>
            a
              .positional('files', { type: 'string', array: true, default: undefined, demandOption: true })
              .option('site', { type: 'string', describe: 'the site they come from (a receipt for a catalogued bundle names it itself)' })
              .option('require-signature', { type: 'string', describe: "refuse documents not signed (FILE.sig) by this public key: the site's" }),
          handler: async (a) => {
            const verifier = a['require-signature'] !== undefined ? await loadVerifier(a['require-signature']) : undefined;
            const docs: { file: string; text: string; report: Report }[] = [];
            // All are read and checked before any is recorded.
            for (const f of a.files ?? []) {
              const report = await readReport(f, verifier);
              docs.push({ file: f, text: documentBytes(report.doc).toString(), report });
            }
            withCatalog((c) => {
              const results = [];
              for (const { file, text, report } of docs) {
                let site = a.site;
                if (!site && report.kind === 'receipt') {
                  const sites = [...new Set(report.doc.bundles.flatMap((b) => c.sitesOfBundle(b)))];
                  if (sites.length > 1) throw new FerryError('USAGE', `${file} reports on bundles made for several sites (${sites.join(', ')})`, { hint: 'say which with --site' });
                  site = sites[0];
                }
                if (!site) throw new FerryError('USAGE', `which site does ${file} come from?`, { hint: 'say it with --site NAME' });
                const failed = report.doc.images.filter((i) => i.status === 'failed').length + (report.kind === 'receipt' ? report.doc.failures.length : 0);
                const added = c.record({
                  site,
                  kind: report.kind,
                  ref: sha256Of(text),
                  bundles: report.kind === 'receipt' ? report.doc.bundles : [],
                  created: report.kind === 'receipt' ? report.doc.created : new Date().toISOString(),
                  ...(report.kind === 'receipt' ? { operation: report.doc.operation } : {}),
                  summary: { images: report.doc.images.length, layers: report.doc.layers.length, failed },
                  holdings: { layers: report.doc.layers, images: report.doc.images },
                });
                results.push({ file, site, kind: report.kind, imported: added });
                if (!a.json && !a.quiet) process.stderr.write(`${added ? 'Imported' : 'Already imported'} ${report.kind} ${file} for site ${site}\n`);
              }
              if (a.json) printJson({ imported: results });
            });
          },
        })
        .demandCommand(1, 'name a site command: add, list, show or import'),
    handler: () => undefined,
  };
}

function withCatalog(fn: (c: Catalog) => void): void {
  const c = Catalog.open();
  try {
    fn(c);
  } finally {
    c.close();
  }
}
