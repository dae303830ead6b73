/**
 * READDIR and READDIRPLUS.
 *
 * Cookies are a hash of the entry's name, not a position: a directory changed between two
 * READDIR calls (the client's `rm -r` removing what it just listed) neither skips nor repeats
 * the entries that remain. Entries are sent in cookie order and a call continues after the
 * given cookie. '.' and '..' take cookies 1 and 2. Since cookies never go stale the cookie
 * verifier is constant for the scheme; one that differs (with a non-zero cookie) gets
 * NFS3ERR_BAD_COOKIE.
 */
import { createHash } from 'node:crypto';
import { postOpAttributes, postOpAttributesOf } from '../attributes.js';
import { NfsStatusError, statusOf } from '../errors.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { NfsStore, StoredObject } from '../store/store.js';
import type { ProcedureContext } from './context.js';

export const cookieVerifier = Buffer.from('nfs3ck01', 'latin1');
const firstNameCookie = 3n;
/** Bytes of the reply outside the entries (status, dir attributes, verifier, list ends), upper bound. */
const replyFixedBytes = 4 + 88 + 8 + 8;
/** Entries in one reply: bounds the reply build even for a client asking for huge counts. */
const entriesPerReplyMax = 4096;
/**
 * Names whose cookie is remembered: every page of a listing cooks the whole directory (and
 * `rm -r` lists it again between removals), a SHA-256 per name per page; ~100 bytes an
 * entry, so a few MiB at most; a full table starts over.
 */
const rememberedCookiesMax = 65_536;

interface CookedEntry {
  name: string;
  fileId: bigint;
  cookie: bigint;
}

/** Cookies by name; created per service, main thread. */
class NameCookies {
  private readonly cookies = new Map<string, bigint>();

  of(name: string): bigint {
    const known = this.cookies.get(name);
    if (known !== undefined) return known;
    if (this.cookies.size >= rememberedCookiesMax) this.cookies.clear();
    const hash = createHash('sha256').update(name, 'latin1').digest().readBigUInt64BE(0) >> 1n;
    const cookie = hash < firstNameCookie ? hash + firstNameCookie : hash;
    this.cookies.set(name, cookie);
    return cookie;
  }
}

/** 4 (list flag) + fileid + name + cookie, as XDR lays entry3 out. */
function entryBytes(name: string): number {
  return 4 + 8 + 4 + Math.ceil(name.length / 4) * 4 + 8;
}

async function entriesAfter(store: NfsStore, cookies: NameCookies, directory: Uint8Array, cookie: bigint, verifier: Uint8Array): Promise<CookedEntry[]> {
  if (cookie !== 0n && !cookieVerifier.equals(verifier)) throw new NfsStatusError(nfs.NFS3ERR_BAD_COOKIE, 'cookie verifier of another scheme');
  const parent = await store.lookup(directory, '..');
  const entries: CookedEntry[] = [
    { name: '.', fileId: parent.directory.fileid, cookie: 1n },
    { name: '..', fileId: parent.object?.attributes.fileid ?? parent.directory.fileid, cookie: 2n },
  ];
  for (const entry of await store.listDirectory(directory)) entries.push({ ...entry, cookie: cookies.of(entry.name) });
  entries.sort((a, b) => (a.cookie < b.cookie ? -1 : a.cookie > b.cookie ? 1 : 0));
  return entries.filter((entry) => entry.cookie > cookie);
}

/** The entries that fit, and whether they were all there was. */
function fitting(entries: CookedEntry[], budget: (entry: CookedEntry) => boolean): { page: CookedEntry[]; eof: boolean } {
  const page: CookedEntry[] = [];
  for (const entry of entries) {
    if (page.length === entriesPerReplyMax || !budget(entry)) return { page, eof: false };
    page.push(entry);
  }
  return { page, eof: true };
}

function linked<T extends { nextentry: T | null }>(items: T[]): T | null {
  for (let index = items.length - 2; index >= 0; index -= 1) items[index]!.nextentry = items[index + 1]!;
  return items[0] ?? null;
}

export function directoryProcedures(context: ProcedureContext) {
  const { store } = context;
  const cookies = new NameCookies();
  return {
    NFSPROC3_READDIR: async (args: nfs.READDIR3args): Promise<nfs.READDIR3res> => {
      try {
        const entries = await entriesAfter(store, cookies, args.dir.data, args.cookie, args.cookieverf);
        let remaining = Math.min(args.count, context.maxTransferBytes) - replyFixedBytes;
        const { page, eof } = fitting(entries, (entry) => (remaining -= entryBytes(entry.name)) >= 0);
        if (page.length === 0 && !eof) throw new NfsStatusError(nfs.NFS3ERR_TOOSMALL, `count ${args.count} holds no entry`);
        const items = page.map((entry): nfs.entry3 => ({ fileid: entry.fileId, name: entry.name, cookie: entry.cookie, nextentry: null }));
        return {
          status: nfs.NFS3_OK,
          resok: { dir_attributes: await postOpAttributesOf(store, args.dir.data), cookieverf: cookieVerifier, reply: { entries: linked(items), eof } },
        };
      } catch (error) {
        return { status: statusOf(error), resfail: { dir_attributes: await postOpAttributesOf(store, args.dir.data) } };
      }
    },

    NFSPROC3_READDIRPLUS: async (args: nfs.READDIRPLUS3args): Promise<nfs.READDIRPLUS3res> => {
      try {
        const entries = await entriesAfter(store, cookies, args.dir.data, args.cookie, args.cookieverf);
        let directoryBytes = args.dircount;
        let replyBytes = Math.min(args.maxcount, context.maxTransferBytes) - replyFixedBytes;
        // Attributes (4 + 84) and a handle (4 + 4 + 32) ride with each entry.
        const { page, eof } = fitting(entries, (entry) => {
          directoryBytes -= entryBytes(entry.name);
          replyBytes -= entryBytes(entry.name) + 88 + 40;
          return directoryBytes >= 0 && replyBytes >= 0;
        });
        if (page.length === 0 && !eof) throw new NfsStatusError(nfs.NFS3ERR_TOOSMALL, `maxcount ${args.maxcount} holds no entry`);
        const items: nfs.entryplus3[] = [];
        for (const entry of page) items.push(await plusEntry(store, args.dir.data, entry));
        return {
          status: nfs.NFS3_OK,
          resok: { dir_attributes: await postOpAttributesOf(store, args.dir.data), cookieverf: cookieVerifier, reply: { entries: linked(items), eof } },
        };
      } catch (error) {
        return { status: statusOf(error), resfail: { dir_attributes: await postOpAttributesOf(store, args.dir.data) } };
      }
    },
  };
}

/** An entry with its handle and attributes; an entry gone meanwhile is sent without them. */
async function plusEntry(store: NfsStore, directory: Uint8Array, entry: CookedEntry): Promise<nfs.entryplus3> {
  const base = { fileid: entry.fileId, name: entry.name, cookie: entry.cookie, nextentry: null };
  let object: StoredObject | null;
  try {
    ({ object } = await store.lookup(directory, entry.name));
  } catch {
    object = null;
  }
  if (object === null) return { ...base, name_attributes: { attributes_follow: false }, name_handle: { handle_follows: false } };
  return { ...base, name_attributes: postOpAttributes(object.attributes), name_handle: { handle_follows: true, handle: { data: object.handle } } };
}
