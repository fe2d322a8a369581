// End-to-end CRUD test driving the official PocketBase JS SDK against a running server.
//
// Usage:
//   KB_URL=http://127.0.0.1:8090 KB_EMAIL=admin@example.com KB_PASSWORD=secret123456 \
//     node --test tests/js/sdk_crud.test.mjs
//
// The same file runs against keepbase and against the real PocketBase binary (oracle),
// so every assertion here must hold for PocketBase 0.40.
//
// Top-level tests run sequentially in declaration order and share state (the collection
// and its records). Checks that need the filter language live in their own tests so
// they can fail independently of the plain CRUD checks.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PocketBase, { ClientResponseError } from 'pocketbase';

const URL = process.env.KB_URL;
const EMAIL = process.env.KB_EMAIL;
const PASSWORD = process.env.KB_PASSWORD;

if (!URL || !EMAIL || !PASSWORD) {
  throw new Error('KB_URL, KB_EMAIL and KB_PASSWORD must be set');
}

const pb = new PocketBase(URL);
pb.autoCancellation(false);

const COLLECTION = `sdk_crud_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;

// title -> views; created in this order
const SEED = [
  { title: 'x', views: 30, tags: ['a'] },
  { title: 'y', views: 10, tags: ['b', 'c'] },
  { title: 'z', views: 50, tags: [] },
  { title: 'w', views: 20, tags: ['a', 'b', 'c'] },
  { title: 'v', views: 40, tags: ['c'] },
];

const ID_RE = /^[a-z0-9]{15}$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let collection = null;
const created = []; // records as returned by create(), same order as SEED
let deletedId = null;
let collectionDeleted = false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function expectError(promise, status) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    assert.equal(err.status, status, `expected status ${status}, got ${err.status}: ${JSON.stringify(err.response)}`);
    return err;
  }
  assert.fail(`expected a ${status} ClientResponseError, but the request succeeded`);
}

function recs() {
  return pb.collection(COLLECTION);
}

before(async () => {
  const auth = await pb.collection('_superusers').authWithPassword(EMAIL, PASSWORD);
  assert.ok(pb.authStore.isValid, 'auth store should be valid after superuser auth');
  assert.ok(pb.authStore.isSuperuser, 'auth store should hold a superuser');
  assert.equal(typeof auth.token, 'string');
  assert.ok(auth.token.length > 0);
  assert.equal(auth.record.email, EMAIL);
  assert.equal(auth.record.collectionName, '_superusers');
  assert.match(auth.record.id, ID_RE);
});

after(async () => {
  // Best-effort cleanup if the explicit deletion test did not run or failed.
  if (collection && !collectionDeleted) {
    try {
      await pb.collections.delete(collection.id);
    } catch {
      // ignore
    }
  }
});

test('create base collection', async () => {
  collection = await pb.collections.create({
    name: COLLECTION,
    type: 'base',
    fields: [
      { name: 'title', type: 'text', required: true },
      { name: 'views', type: 'number' },
      { name: 'tags', type: 'select', maxSelect: 3, values: ['a', 'b', 'c'] },
      { name: 'created', type: 'autodate', onCreate: true },
      { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
    ],
    listRule: '',
    viewRule: '',
    createRule: '',
    updateRule: '',
    deleteRule: '',
  });

  assert.equal(collection.name, COLLECTION);
  assert.equal(collection.type, 'base');
  assert.equal(typeof collection.id, 'string');
  assert.ok(collection.id.length > 0);
  assert.equal(collection.system, false);
  for (const rule of ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule']) {
    assert.equal(collection[rule], '', `${rule} should be the empty string (public)`);
  }

  const byName = Object.fromEntries(collection.fields.map((f) => [f.name, f]));
  // The implicit primary key field is always present.
  assert.ok(byName.id, 'collection should have an implicit id field');
  assert.equal(byName.id.type, 'text');
  assert.equal(byName.id.primaryKey, true);
  assert.equal(byName.title.type, 'text');
  assert.equal(byName.title.required, true);
  assert.equal(byName.views.type, 'number');
  assert.equal(byName.tags.type, 'select');
  assert.equal(byName.tags.maxSelect, 3);
  assert.deepEqual(byName.tags.values, ['a', 'b', 'c']);
  assert.equal(byName.created.type, 'autodate');
  assert.equal(byName.created.onCreate, true);
  assert.equal(byName.created.onUpdate, false);
  assert.equal(byName.updated.type, 'autodate');
  assert.equal(byName.updated.onCreate, true);
  assert.equal(byName.updated.onUpdate, true);
  for (const f of collection.fields) {
    assert.equal(typeof f.id, 'string', `field ${f.name} should have an id`);
    assert.ok(f.id.length > 0);
  }

  // Fetching it back by name returns the same collection.
  const fetched = await pb.collections.getOne(COLLECTION);
  assert.equal(fetched.id, collection.id);
  assert.equal(fetched.name, COLLECTION);
});

test('create records', async () => {
  assert.ok(collection, 'collection must exist');
  for (const data of SEED) {
    const rec = await recs().create(data);
    assert.match(rec.id, ID_RE);
    assert.equal(rec.collectionId, collection.id);
    assert.equal(rec.collectionName, COLLECTION);
    assert.equal(rec.title, data.title);
    assert.equal(rec.views, data.views);
    assert.deepEqual(rec.tags, data.tags);
    assert.match(rec.created, DATE_RE);
    assert.match(rec.updated, DATE_RE);
    // PocketBase stamps the two autodate fields separately (in either order), so they may differ
    // by a few milliseconds; keepbase stamps both with one instant.
    const gap = Math.abs(Date.parse(rec.updated.replace(' ', 'T')) - Date.parse(rec.created.replace(' ', 'T')));
    assert.ok(gap < 1000, `created and updated should be stamped together on create (${rec.created} / ${rec.updated})`);
    created.push(rec);
  }
  assert.equal(new Set(created.map((r) => r.id)).size, SEED.length, 'ids should be unique');

  // A record with only the required field gets zero values for the rest.
  const minimal = await recs().create({ title: 'minimal' });
  assert.equal(minimal.views, 0);
  assert.deepEqual(minimal.tags, []);
  assert.equal(await recs().delete(minimal.id), true);
});

test('getList paging envelope with sort', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  const byViewsDesc = [...SEED].sort((a, b) => b.views - a.views).map((r) => r.title);

  const page1 = await recs().getList(1, 2, { sort: '-views' });
  assert.equal(page1.page, 1);
  assert.equal(page1.perPage, 2);
  assert.equal(page1.totalItems, SEED.length);
  assert.equal(page1.totalPages, Math.ceil(SEED.length / 2));
  assert.equal(page1.items.length, 2);
  assert.deepEqual(page1.items.map((r) => r.title), byViewsDesc.slice(0, 2));
  for (const item of page1.items) {
    assert.equal(item.collectionName, COLLECTION);
    assert.equal(item.collectionId, collection.id);
  }

  const page2 = await recs().getList(2, 2, { sort: '-views' });
  assert.equal(page2.page, 2);
  assert.equal(page2.perPage, 2);
  assert.equal(page2.totalItems, SEED.length);
  assert.equal(page2.totalPages, 3);
  assert.deepEqual(page2.items.map((r) => r.title), byViewsDesc.slice(2, 4));

  const page3 = await recs().getList(3, 2, { sort: '-views' });
  assert.equal(page3.page, 3);
  assert.deepEqual(page3.items.map((r) => r.title), byViewsDesc.slice(4));

  // Past the last page: empty items, envelope still populated.
  const page9 = await recs().getList(9, 2, { sort: '-views' });
  assert.equal(page9.page, 9);
  assert.equal(page9.perPage, 2);
  assert.equal(page9.totalItems, SEED.length);
  assert.equal(page9.totalPages, 3);
  assert.deepEqual(page9.items, []);

  // Ascending sort on a text field.
  const asc = await recs().getList(1, 10, { sort: 'title' });
  assert.deepEqual(asc.items.map((r) => r.title), SEED.map((r) => r.title).sort());

  // skipTotal reports -1 for the counters.
  const skipped = await recs().getList(1, 2, { sort: '-views', skipTotal: true });
  assert.equal(skipped.page, 1);
  assert.equal(skipped.perPage, 2);
  assert.equal(skipped.totalItems, -1);
  assert.equal(skipped.totalPages, -1);
  assert.deepEqual(skipped.items.map((r) => r.title), byViewsDesc.slice(0, 2));

  // fields= limits the returned keys.
  const picked = await recs().getList(1, 1, { sort: 'views', fields: 'id,title' });
  assert.equal(picked.items.length, 1);
  assert.deepEqual(Object.keys(picked.items[0]).sort(), ['id', 'title']);
  assert.equal(picked.items[0].title, 'y');
});

test('getFullList', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  const all = await recs().getFullList({ sort: 'views' });
  assert.ok(Array.isArray(all));
  assert.equal(all.length, SEED.length);
  assert.deepEqual(
    all.map((r) => r.title),
    [...SEED].sort((a, b) => a.views - b.views).map((r) => r.title),
  );

  // Small batch size forces several page requests.
  const batched = await recs().getFullList({ sort: '-views', batch: 2 });
  assert.equal(batched.length, SEED.length);
  assert.deepEqual(
    batched.map((r) => r.title),
    [...SEED].sort((a, b) => b.views - a.views).map((r) => r.title),
  );
  assert.deepEqual(new Set(batched.map((r) => r.id)), new Set(created.map((r) => r.id)));
});

test('getOne', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  const want = created[0];
  const got = await recs().getOne(want.id);
  assert.deepEqual(got, want);

  const unknown = await expectError(recs().getOne('doesnotexist123'), 404);
  assert.equal(unknown.response.status, 404);
});

test('update', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  const orig = created[1];
  await sleep(20); // autodate has millisecond precision
  const upd = await recs().update(orig.id, { title: 'y2', views: 11, tags: ['a', 'c'] });
  assert.equal(upd.id, orig.id);
  assert.equal(upd.title, 'y2');
  assert.equal(upd.views, 11);
  assert.deepEqual(upd.tags, ['a', 'c']);
  assert.equal(upd.created, orig.created, 'created must not change on update');
  assert.match(upd.updated, DATE_RE);
  assert.ok(upd.updated > orig.updated, `updated should advance (${orig.updated} -> ${upd.updated})`);

  // Partial update leaves other fields untouched.
  const partial = await recs().update(orig.id, { views: 12 });
  assert.equal(partial.title, 'y2');
  assert.equal(partial.views, 12);
  assert.deepEqual(partial.tags, ['a', 'c']);

  // Number field modifiers.
  const incr = await recs().update(orig.id, { 'views+': 3 });
  assert.equal(incr.views, 15);

  const fetched = await recs().getOne(orig.id);
  assert.equal(fetched.title, 'y2');
  assert.equal(fetched.views, 15);
  created[1] = fetched;

  // Clearing a required field on update is a validation error.
  const err = await expectError(recs().update(orig.id, { title: '' }), 400);
  assert.equal(err.response.data.title.code, 'validation_required');
});

test('delete and 404 on the deleted id', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  const victim = created[2];
  const ok = await recs().delete(victim.id);
  assert.equal(ok, true);
  deletedId = victim.id;

  const err = await expectError(recs().getOne(victim.id), 404);
  assert.equal(err.response.status, 404);
  assert.equal(typeof err.response.message, 'string');
  assert.deepEqual(err.response.data, {});

  await expectError(recs().delete(victim.id), 404);
  await expectError(recs().update(victim.id, { title: 'ghost' }), 404);

  const all = await recs().getFullList();
  assert.equal(all.length, SEED.length - 1);
  assert.ok(!all.some((r) => r.id === victim.id));
});

test('create validation errors', async () => {
  assert.ok(collection, 'collection must exist');
  const err = await expectError(recs().create({ title: '', views: 1 }), 400);
  assert.equal(err.response.status, 400);
  assert.equal(typeof err.response.message, 'string');
  assert.ok(err.response.data.title, `expected a title error: ${JSON.stringify(err.response.data)}`);
  assert.equal(err.response.data.title.code, 'validation_required');
  assert.equal(typeof err.response.data.title.message, 'string');

  // Missing title entirely.
  const missing = await expectError(recs().create({ views: 1 }), 400);
  assert.equal(missing.response.data.title.code, 'validation_required');

  // Nothing was persisted by the failed creates.
  const list = await recs().getList(1, 50);
  assert.equal(list.totalItems, SEED.length - 1);
});

test('filter: getFirstListItem', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  const x = await recs().getFirstListItem('title = "x"');
  assert.equal(x.id, created[0].id);
  assert.equal(x.title, 'x');
  assert.equal(x.views, 30);

  // Parameter binding via pb.filter.
  const w = await recs().getFirstListItem(pb.filter('title = {:t}', { t: 'w' }));
  assert.equal(w.id, created[3].id);

  // No match -> 404 raised by the SDK.
  await expectError(recs().getFirstListItem('title = "nope"'), 404);
  // The deleted record is not found by filter either.
  await expectError(recs().getFirstListItem(`id = "${deletedId}"`), 404);
});

test('filter: getList with filter and sort', async () => {
  assert.equal(created.length, SEED.length, 'records must have been created');
  // Remaining: x=30, y2=15, w=20, v=40 (z deleted)
  const res = await recs().getList(1, 10, { filter: 'views >= 20', sort: 'views' });
  assert.equal(res.totalItems, 3);
  assert.equal(res.totalPages, 1);
  assert.deepEqual(res.items.map((r) => r.title), ['w', 'x', 'v']);

  const combined = await recs().getFullList({ filter: 'views > 15 && title != "v"', sort: '-views' });
  assert.deepEqual(combined.map((r) => r.title), ['x', 'w']);

  const paged = await recs().getList(1, 1, { filter: 'views >= 20', sort: '-views' });
  assert.equal(paged.totalItems, 3);
  assert.equal(paged.totalPages, 3);
  assert.deepEqual(paged.items.map((r) => r.title), ['v']);
});

test('delete the collection', async () => {
  assert.ok(collection, 'collection must exist');
  const ok = await pb.collections.delete(collection.id);
  assert.equal(ok, true);
  collectionDeleted = true;
  await expectError(pb.collections.getOne(collection.id), 404);
  await expectError(pb.collections.getOne(COLLECTION), 404);
  await expectError(recs().getList(1, 1), 404);
});
