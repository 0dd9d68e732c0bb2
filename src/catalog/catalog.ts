// Catalog: the connected side's record of sites, the bundles made for each, and the inventories and receipts that
// came back (SQLite via better-sqlite3). A record only: every document in it also exists as a file.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { FerryError } from '../ui/errors.js';
import type { Holdings } from '../image/holdings.js';

export type SiteKind = 'docker-daemon' | 'registry' | 'containerd';
export type RecordKind = 'bundle' | 'inventory' | 'receipt';

export interface Site {
  name: string;
  kind: SiteKind;
  created: string;
  note?: string;
}

export interface CatalogRecord {
  seq: number;
  site: string;
  kind: RecordKind;
  /** A bundle's ID, or the sha256 of an inventory or receipt. */
  ref: string;
  /** Receipts: the bundles they report on. */
  bundles: string[];
  /** When the bundle or receipt was made; for an inventory, when it was imported. */
  created: string;
  recorded: string;
  path?: string;
  /** Receipts: load or push. */
  operation?: 'load' | 'push';
  /** A short account for listings: image and layer counts, bytes, failures. */
  summary: Record<string, number>;
  holdings: Holdings;
}

/** 2: sites may be of kind containerd. */
const SCHEMA_VERSION = 2;

/** catalogPath is $FERRY_HOME/catalog.db, else in the XDG data directory. */
export function catalogPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_HOME) return join(env.FERRY_HOME, 'catalog.db');
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'ferry', 'catalog.db');
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class Catalog {
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  static open(path: string = catalogPath()): Catalog {
    let db: Database.Database;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      db = new Database(path);
      // Another ferry may be writing: wait for it rather than fail, and let readers go on beside it (WAL).
      db.pragma('busy_timeout = 15000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    } catch (err) {
      throw new FerryError('RUNTIME', `cannot open the catalog ${path}: ${(err as Error).message}`, {
        hint: 'if it is damaged, move it aside: the catalog is only a record, and a new one learns again from inventories and receipts (set FERRY_HOME to use another place)',
      });
    }
    return new Catalog(db, path);
  }

  close(): void {
    this.db.close();
  }

  addSite(name: string, kind: SiteKind, note?: string): Site {
    if (!NAME.test(name)) throw new FerryError('USAGE', `"${name.slice(0, 80)}" is not a site name`, { hint: 'use letters, digits, ".", "_" and "-", up to 64 characters' });
    const site: Site = { name, kind, created: new Date().toISOString(), ...(note ? { note } : {}) };
    const info = this.db.prepare('INSERT OR IGNORE INTO sites (name, kind, created, note) VALUES (?, ?, ?, ?)').run(name, kind, site.created, note ?? null);
    if (info.changes === 0) throw new FerryError('USAGE', `site ${name} already exists in the catalog ${this.path}`, { hint: '`ferry site show NAME` says what it holds' });
    return site;
  }

  site(name: string): Site | undefined {
    const row = this.db.prepare('SELECT name, kind, created, note FROM sites WHERE name = ?').get(name) as { name: string; kind: SiteKind; created: string; note: string | null } | undefined;
    return row && { name: row.name, kind: row.kind, created: row.created, ...(row.note ? { note: row.note } : {}) };
  }

  /** requireSite is site() for commands that need it to exist. */
  requireSite(name: string): Site {
    const s = this.site(name);
    if (!s) throw new FerryError('USAGE', `no site ${name} in the catalog ${this.path}`, { hint: `add it with \`ferry site add ${name}\`` });
    return s;
  }

  sites(): (Site & { bundles: number; inventories: number; receipts: number; last?: string })[] {
    const rows = this.db
      .prepare(
        `SELECT s.name, s.kind, s.created, s.note,
           SUM(r.kind = 'bundle') AS bundles, SUM(r.kind = 'inventory') AS inventories, SUM(r.kind = 'receipt') AS receipts, MAX(r.recorded) AS last
         FROM sites s LEFT JOIN records r ON r.site = s.name GROUP BY s.name ORDER BY s.name`,
      )
      .all() as { name: string; kind: SiteKind; created: string; note: string | null; bundles: number | null; inventories: number | null; receipts: number | null; last: string | null }[];
    return rows.map((r) => ({
      name: r.name,
      kind: r.kind,
      created: r.created,
      ...(r.note ? { note: r.note } : {}),
      bundles: r.bundles ?? 0,
      inventories: r.inventories ?? 0,
      receipts: r.receipts ?? 0,
      ...(r.last ? { last: r.last } : {}),
    }));
  }

  /**
   * record adds a bundle made for a site, or an inventory or receipt that came back from it. Recording the same
   * document twice changes nothing and says so (false).
   */
  record(rec: Omit<CatalogRecord, 'seq' | 'recorded'>): boolean {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO records (site, kind, ref, bundles, created, recorded, path, operation, summary, holdings)
       VALUES (@site, @kind, @ref, @bundles, @created, @recorded, @path, @operation, @summary, @holdings)`,
    );
    const run = this.db.transaction(() => {
      this.requireSite(rec.site);
      return insert.run({
        site: rec.site,
        kind: rec.kind,
        ref: rec.ref,
        bundles: JSON.stringify(rec.bundles),
        created: rec.created,
        recorded: new Date().toISOString(),
        path: rec.path ?? null,
        operation: rec.operation ?? null,
        summary: JSON.stringify(rec.summary),
        holdings: JSON.stringify(rec.holdings),
      }).changes;
    });
    return run.immediate() > 0;
  }

  /** records lists a site's records in the order they were made; since limits them to that sequence number on. */
  records(site: string, opts: { since?: number; withHoldings?: boolean } = {}): CatalogRecord[] {
    const cols = `seq, site, kind, ref, bundles, created, recorded, path, operation, summary${opts.withHoldings ? ', holdings' : ''}`;
    const rows = this.db.prepare(`SELECT ${cols} FROM records WHERE site = ? AND seq >= ? ORDER BY seq`).all(site, opts.since ?? 0) as RecordRow[];
    return rows.map((r) => ({
      seq: r.seq,
      site: r.site,
      kind: r.kind,
      ref: r.ref,
      bundles: JSON.parse(r.bundles) as string[],
      created: r.created,
      recorded: r.recorded,
      ...(r.path ? { path: r.path } : {}),
      ...(r.operation ? { operation: r.operation } : {}),
      summary: JSON.parse(r.summary) as Record<string, number>,
      holdings: r.holdings ? (JSON.parse(r.holdings) as Holdings) : { layers: [], images: [] },
    }));
  }

  /** sitesOfBundle names the sites a bundle was made for. */
  sitesOfBundle(bundleId: string): string[] {
    return (this.db.prepare(`SELECT site FROM records WHERE kind = 'bundle' AND ref = ? ORDER BY site`).all(bundleId) as { site: string }[]).map((r) => r.site);
  }

  /** lastInventory is the sequence number of the site's latest inventory, if any. */
  lastInventory(site: string): number | undefined {
    const row = this.db.prepare(`SELECT MAX(seq) AS seq FROM records WHERE site = ? AND kind = 'inventory'`).get(site) as { seq: number | null };
    return row.seq ?? undefined;
  }
}

interface RecordRow {
  seq: number;
  site: string;
  kind: RecordKind;
  ref: string;
  bundles: string;
  created: string;
  recorded: string;
  path: string | null;
  operation: 'load' | 'push' | null;
  summary: string;
  holdings?: string;
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) throw new Error(`it was written by a newer ferry (schema ${version}, this ferry knows ${SCHEMA_VERSION})`);
  if (version === SCHEMA_VERSION) return;
  if (version === 1) return widenSiteKinds(db);
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS sites (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('docker-daemon', 'registry', 'containerd')),
        created TEXT NOT NULL,
        note TEXT
      );
      CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        site TEXT NOT NULL REFERENCES sites(name) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('bundle', 'inventory', 'receipt')),
        ref TEXT NOT NULL,
        bundles TEXT NOT NULL,
        created TEXT NOT NULL,
        recorded TEXT NOT NULL,
        path TEXT,
        operation TEXT,
        summary TEXT NOT NULL,
        holdings TEXT NOT NULL,
        UNIQUE (site, kind, ref)
      );
    `);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * widenSiteKinds takes a schema 1 catalog to 2: SQLite cannot change a CHECK, so the sites table is rebuilt
 * (SQLite's own recipe: foreign keys off, copy, drop, rename, check, all in one transaction), records untouched.
 */
function widenSiteKinds(db: Database.Database): void {
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      db.exec(`
        CREATE TABLE sites_v2 (
          name TEXT PRIMARY KEY,
          kind TEXT NOT NULL CHECK (kind IN ('docker-daemon', 'registry', 'containerd')),
          created TEXT NOT NULL,
          note TEXT
        );
        INSERT INTO sites_v2 (name, kind, created, note) SELECT name, kind, created, note FROM sites;
        DROP TABLE sites;
        ALTER TABLE sites_v2 RENAME TO sites;
      `);
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length) throw new Error(`records name ${broken.length} site(s) the catalog does not have`);
      db.pragma('user_version = 2');
    }).immediate();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}
