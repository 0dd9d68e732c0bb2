// report: the figures as rows (median run of each side, ferry/baseline ratio, target, PASS/MISS) and as a text table.
import type { ContainerdFigures } from './containerd.js';
import type { IncrementalFigures } from './incremental.js';
import type { LoadFigures } from './load.js';
import type { PackFigures } from './pack.js';
import type { RegistryFigures } from './registry.js';
import type { ServeFigures } from './serve.js';
import type { VerifyFigures } from './verify.js';
import { median } from './measure.js';

export const RSS_LIMIT_MB = 200;

export interface Row {
  figure: string;
  unit: 's' | 'MB' | 'kB' | 'MB/s';
  baselineName?: string;
  /** Median of the baseline's runs. */
  baseline?: number;
  /** Median of ferry's runs; for ferry's own RSS limit, the highest run. */
  ferry: number;
  /** ferry / baseline. */
  ratio?: number;
  target?: string;
  pass?: boolean;
  /** Every run, in the order taken. */
  runs: { baseline?: number[]; ferry: number[] };
}

const MB = 1e6;
const secs = (rs: readonly { seconds: number }[]): number[] => rs.map((r) => r.seconds);
const cpu = (rs: readonly { cpuSeconds: number }[]): number[] => rs.map((r) => r.cpuSeconds);
const rssOf = (rs: readonly { peakRssMb: number }[]): number[] => rs.map((r) => r.peakRssMb);

function compared(figure: string, unit: Row['unit'], baselineName: string, b: number[], f: number[], maxRatio?: number): Row {
  const baseline = median(b);
  const ferry = median(f);
  const ratio = ferry / baseline;
  const target = maxRatio === undefined ? {} : { target: `ferry/base <= ${maxRatio.toFixed(2)}`, pass: ratio <= maxRatio };
  return { figure, unit, baselineName, baseline, ferry, ratio, ...target, runs: { baseline: b, ferry: f } };
}

function rssLimit(figure: string, f: number[]): Row {
  const peak = Math.max(...f);
  return { figure, unit: 'MB', ferry: peak, target: `<= ${RSS_LIMIT_MB} MB`, pass: peak <= RSS_LIMIT_MB, runs: { ferry: f } };
}

export function rows(pack: PackFigures, load: LoadFigures, verify: VerifyFigures): Row[] {
  const save = 'docker save | zstd -3 -T2';
  const dload = 'docker load -i (plain tar)';
  const pipe = 'zstd -dc | sha256sum';
  return [
    compared('pack time', 's', save, secs(pack.baseline), secs(pack.ferry), 1.0),
    compared('pack output size', 'MB', save, pack.baseline.map((r) => r.bytes / MB), pack.ferry.map((r) => r.bytes / MB), 1.02),
    rssLimit('pack peak RSS', rssOf(pack.ferry)),
    compared('pack CPU, client side', 's', save, cpu(pack.baseline), cpu(pack.ferry)),
    compared('load time', 's', dload, secs(load.baseline), secs(load.ferry), 1.1),
    rssLimit('load peak RSS', rssOf(load.ferry)),
    compared('load CPU, client side', 's', dload, cpu(load.baseline), cpu(load.ferry)),
    compared('load: target dockerd peak RSS', 'MB', dload, load.baseline.map((r) => r.dockerdPeakRssMb), load.ferry.map((r) => r.dockerdPeakRssMb)),
    compared('verify time', 's', pipe, secs(verify.pipeline), secs(verify.ferry), 1.25),
    rssLimit('verify peak RSS', rssOf(verify.ferry)),
    compared('verify CPU', 's', pipe, cpu(verify.pipeline), cpu(verify.ferry)),
    compared('verify time vs hashing only', 's', 'sha256sum of compressed', secs(verify.sha256sum), secs(verify.ferry)),
    compared('verify peak RSS vs pipeline', 'MB', pipe, rssOf(verify.pipeline), rssOf(verify.ferry)),
  ];
}

/** containerdRows: ferry load --containerd against ctr's own import of a plain docker save tar. */
export function containerdRows(c: ContainerdFigures): Row[] {
  const ctr = 'ctr -n k8s.io images import (plain tar)';
  return [
    compared('load into containerd time', 's', ctr, secs(c.baseline), secs(c.ferry), 1.0),
    rssLimit('load into containerd peak RSS', rssOf(c.ferry)),
    compared('load into containerd CPU, client side', 's', ctr, cpu(c.baseline), cpu(c.ferry)),
    compared('load: target containerd peak RSS', 'MB', ctr, c.baseline.map((r) => r.containerdPeakRssMb), c.ferry.map((r) => r.containerdPeakRssMb)),
  ];
}

/** registryRows: the skopeo copy comparisons (daemon → zstd archive, registry → archive, archive → registry). */
export function registryRows(pack: PackFigures, reg: RegistryFigures): Row[] {
  const daemon = 'skopeo docker-daemon: -> oci-archive: zstd';
  const pull = 'skopeo docker:// -> oci-archive:';
  const copy = 'skopeo docker:// -> docker://';
  const d = reg.daemonToArchive.skopeo;
  const { skopeo: ps, ferry: pf } = reg.registryToArchive;
  const { skopeo: cs, ferry: cf } = reg.registryToRegistry;
  const bytes = (rs: readonly { bytes?: number }[]): number[] => rs.map((r) => (r.bytes ?? 0) / MB);
  return [
    compared('pack (daemon) time vs skopeo', 's', daemon, secs(d), secs(pack.ferry)),
    compared('pack (daemon) size vs skopeo', 'MB', daemon, bytes(d), pack.ferry.map((r) => r.bytes / MB)),
    compared('pack (daemon) CPU vs skopeo', 's', daemon, cpu(d), cpu(pack.ferry)),
    compared('pack (daemon) peak RSS vs skopeo', 'MB', daemon, rssOf(d), rssOf(pack.ferry)),
    compared('pack from registry time', 's', pull, secs(ps), secs(pf), 1.0),
    rssLimit('pack from registry peak RSS', rssOf(pf)),
    compared('pack from registry size', 'MB', pull, bytes(ps), bytes(pf)),
    compared('pack from registry CPU', 's', pull, cpu(ps), cpu(pf)),
    compared('pack from registry peak RSS vs skopeo', 'MB', pull, rssOf(ps), rssOf(pf)),
    compared('push to registry time', 's', copy, secs(cs), secs(cf), 1.0),
    rssLimit('push to registry peak RSS', rssOf(cf)),
    compared('push to registry CPU', 's', copy, cpu(cs), cpu(cf)),
    compared('push to registry peak RSS vs skopeo', 'MB', copy, rssOf(cs), rssOf(cf)),
  ];
}

/** serveRows: skopeo pulling every image from ferry serve against from docker-registry's own storage; one blob against cat. */
export function serveRows(s: ServeFigures): Row[] {
  const reg = 'skopeo docker:// (docker-registry) -> oci:';
  const mbps = (seconds: number): number => s.blob.bytes / MB / seconds;
  return [
    compared('serve: skopeo pull time', 's', reg, secs(s.registry), secs(s.ferry), 1.0),
    rssLimit('serve peak RSS', [s.servePeakRssMb]),
    compared('serve peak RSS vs docker-registry', 'MB', 'docker-registry', [s.registryPeakRssMb], [s.servePeakRssMb]),
    // Throughput: higher is better, so the ratio reads as the share of cat's rate that serving reaches.
    { figure: `serve: start to first manifest (${(s.bundleBytes / MB).toFixed(0)} MB bundle)`, unit: 's', ferry: s.firstAnswerSeconds, runs: { ferry: [s.firstAnswerSeconds] } },
    compared(`serve: one ${(s.blob.bytes / MB).toFixed(0)} MB blob, throughput`, 'MB/s', 'cat FILE > /dev/null', [mbps(s.blob.catSeconds)], [mbps(s.blob.curlSeconds)]),
  ];
}

/** PLANNING_LIMIT_S: the issue's target for reading a 1,000-image site's inventory and planning against it. */
export const PLANNING_LIMIT_S = 1;

/** incrementalRows: week 2 of the two-week sync, thin against the site's inventory, vs the ideal and a full save. */
export function incrementalRows(inc: IncrementalFigures): Row[] {
  const full = 'docker save | zstd -3 -T2 (week 2)';
  const ideal = inc.ideal.bytes / MB;
  const thinMb = inc.thin.map((r) => r.bytes / MB);
  const thin = median(thinMb);
  const p = inc.planning;
  const planBig = median(p.planSeconds.big);
  return [
    {
      figure: 'week 2 thin bundle vs ideal',
      unit: 'MB',
      baselineName: `${inc.ideal.layers.length} new layers, each zstd -3 alone`,
      baseline: ideal,
      ferry: thin,
      ratio: thin / ideal,
      target: 'ferry/base <= 1.02',
      pass: thin / ideal <= 1.02,
      runs: { baseline: [ideal], ferry: thinMb },
    },
    compared('week 2 thin bundle vs full', 'MB', full, inc.full.map((r) => r.bytes / MB), thinMb),
    compared('week 2 thin pack time vs full', 's', full, secs(inc.full), secs(inc.thin)),
    rssLimit('week 2 thin pack peak RSS', rssOf(inc.thin)),
    { figure: 'week 2 thin load time (site)', unit: 's', ferry: inc.thinLoad.seconds, runs: { ferry: [inc.thinLoad.seconds] } },
    { figure: `ferry inventory (site of ${inc.inventory.images} images)`, unit: 's', ferry: inc.inventory.seconds, runs: { ferry: [inc.inventory.seconds] } },
    {
      figure: `planning (read inventory + plan), ${p.site.images}-image site`,
      unit: 's',
      baselineName: `same, the ${inc.inventory.images}-image site's own inventory`,
      baseline: median(p.planSeconds.small),
      ferry: planBig,
      target: `<= ${PLANNING_LIMIT_S.toFixed(2)} s`,
      pass: planBig <= PLANNING_LIMIT_S,
      runs: { baseline: p.planSeconds.small, ferry: p.planSeconds.big },
    },
    compared(`pack --dry-run (whole), ${p.site.images}-image site`, 's', `same, the ${inc.inventory.images}-image site's own inventory`, p.dryRunSeconds.small, p.dryRunSeconds.big),
  ];
}

/** deltaRows: week 2's rebuilt images with delta layers against whole layers, and each delta against zstd --patch-from. */
export function deltaRows(inc: IncrementalFigures): Row[] {
  const d = inc.deltas;
  const whole = 'thin bundle, whole layers (--no-delta)';
  const mb = (b: number): number => b / MB;
  return [
    compared('week 2 rebuilt images: delta bundle size', 'MB', whole, d.whole.map((r) => mb(r.bytes)), d.delta.map((r) => mb(r.bytes)), 0.1),
    compared('week 2 rebuilt images: delta pack time', 's', whole, secs(d.whole), secs(d.delta), 1.5),
    rssLimit('week 2 delta pack peak RSS', rssOf(d.delta)),
    compared('week 2 rebuilt images: delta load time', 's', whole, [d.wholeLoad.seconds], [d.deltaLoad.seconds], 1.5),
    rssLimit('week 2 delta load peak RSS', [d.deltaLoad.peakRssMb]),
    // The site's layer cache off: each reference comes back from the daemon as a save of a whole image.
    compared('week 2 delta load time, site cache off', 's', whole, [d.wholeLoad.seconds], [d.deltaLoadNoCache.seconds]),
    ...d.layers.map((l) => compared(`delta of ${l.diffId.slice(7, 19)} (${(l.tarBytes / MB).toFixed(0)} MB tar)`, 'kB', 'zstd -19 --long=27 --patch-from', [l.anchorBytes / 1e3], [l.deltaBytes / 1e3], 1.5)),
    // The matching (records, contents, counterparts) and the level-19 frames, without pack's other work.
    ...d.layers.map((l) => compared(`delta encode of ${l.diffId.slice(7, 19)}, ${(l.tarBytes / MB / l.encodeSeconds).toFixed(0)} MB/s`, 's', 'zstd -19 --long=27 --patch-from', [l.anchorSeconds], [l.encodeSeconds])),
  ];
}

/** incrementalNote says in words what the incremental rows measured, with exact byte counts. */
export function incrementalNote(inc: IncrementalFigures): string {
  const thin = inc.thin.at(-1)!.bytes;
  const full = inc.full.at(-1)!.bytes;
  const p = inc.planning;
  return (
    `two-week sync: week 1 (${inc.week1.images.join(' ')}; ${inc.week1.bundleBytes} bytes) loaded into an empty site dockerd, its inventory ` +
    `${inc.inventory.images} images / ${inc.inventory.layers} layers. Week 2 (${inc.week2.images.join(' ')}): an apt upgrade layer of ` +
    `${inc.week2.upgradedPackages.length} packages (${inc.week2.upgradeLayerTarBytes} bytes of tar), the app layer rebuilt with ` +
    `${inc.week2.changedAppModules} modules changed, one image unchanged, one new. Thin bundle ${thin} bytes holding ${inc.thinHeld.layers} layers ` +
    `(${inc.thinHeld.alreadyAtSite} of them already at the site; ferry inspect: ${inc.thinTotals.bytes} bytes of blobs, relies on ` +
    `${inc.thinTotals.reliesOn} layers, ${inc.thinTotals.reliedBytes} bytes uncompressed, left out); ideal ${inc.ideal.bytes} bytes (${inc.ideal.layers.length} new layers, ` +
    `${inc.ideal.tarBytes} bytes of tar); full docker save | zstd ${full} bytes. The thin bundle loaded into the site with the source's image IDs. ` +
    `Planning: \`ferry pack WEEK2 --have INVENTORY --dry-run\`, the plan step timed from its progress line to its first answer line, against the site's inventory and a synthetic one of ` +
    `${p.site.images} images / ${p.site.layers} layers (${p.site.imageLayers} layer references, ${p.site.fileBytes} bytes) that contains it; ` +
    `${p.planSeconds.small.length} alternating runs each, every one saying the ${p.travel} new layers would travel. ` +
    `Deltas: week 2's rebuilt images (${inc.deltas.images.join(' ')}; the new image left out, having nothing to be a delta of) packed ` +
    `against the same inventory with deltas (${inc.deltas.delta.at(-1)!.bytes} bytes) and with whole layers (${inc.deltas.whole.at(-1)!.bytes} bytes), ` +
    `alternating; each loaded into its own site at week 1 with the source's image IDs; per delta layer: ` +
    inc.deltas.layers.map((l) => `${l.diffId.slice(7, 19)} ${l.tarBytes} bytes of tar, delta ${l.deltaBytes}, whole ${l.wholeBytes}, patch-from ${l.anchorBytes} (${l.anchorSeconds.toFixed(1)} s; ferry's encoder alone ${l.encodeSeconds.toFixed(1)} s)`).join('; ')
  );
}

/** table renders rows as aligned text, then every run of every row. */
export function table(rs: readonly Row[]): string {
  const head = ['figure', 'baseline', 'baseline', 'ferry', 'ferry/base', 'target', 'result'];
  const num = (x: number | undefined, unit: string): string => (x === undefined ? '' : `${x.toFixed(unit === 'MB' ? 1 : 2)} ${unit}`);
  const body = rs.map((r) => [
    r.figure,
    r.baselineName ?? '',
    num(r.baseline, r.unit),
    num(r.ferry, r.unit),
    r.ratio === undefined ? '' : `${r.ratio.toFixed(3)}x`,
    r.target ?? '(info)',
    r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const list = (xs: readonly number[], unit: string): string => xs.map((x) => x.toFixed(unit === 'MB' ? 1 : 2)).join(', ');
  const runs = rs.map((r) => `  ${r.figure} (${r.unit}): ${r.runs.baseline ? `${r.baselineName}: ${list(r.runs.baseline, r.unit)}; ` : ''}ferry: ${list(r.runs.ferry, r.unit)}`);
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), '', 'every run, in the order taken:', ...runs].join('\n');
}
