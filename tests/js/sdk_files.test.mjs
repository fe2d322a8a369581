// File uploads through the official PocketBase JS SDK: upload with FormData / plain objects,
// read back with pb.files.getURL (plain, thumb, download), protected files with a file token.
//
// Usage:
//   KB_URL=http://127.0.0.1:8090 KB_EMAIL=admin@example.com KB_PASSWORD=secret123456 \
//     node --test tests/js/sdk_files.test.mjs
//
// Runs against keepbase and against the real PocketBase binary (oracle), so every assertion
// here must hold for PocketBase 0.40.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import PocketBase from 'pocketbase';

const URL = process.env.KB_URL;
const EMAIL = process.env.KB_EMAIL;
const PASSWORD = process.env.KB_PASSWORD;

if (!URL || !EMAIL || !PASSWORD) {
  throw new Error('KB_URL, KB_EMAIL and KB_PASSWORD must be set');
}

const pb = new PocketBase(URL);
pb.autoCancellation(false);

const COLLECTION = `sdk_files_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
// a 1x1 transparent PNG
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082',
  'hex',
);
const TEXT = 'hello from the JS SDK\n';

let collection = null;
let record = null;

async function fetchBytes(url) {
  const res = await fetch(url);
  return { res, bytes: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
  await pb.collection('_superusers').authWithPassword(EMAIL, PASSWORD);
  collection = await pb.collections.create({
    name: COLLECTION,
    type: 'base',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'doc', type: 'file', maxSelect: 1 },
      { name: 'images', type: 'file', maxSelect: 3, thumbs: ['10x10'] },
      { name: 'secret', type: 'file', protected: true },
    ],
    listRule: '',
    viewRule: '',
    createRule: '',
    updateRule: '',
    deleteRule: '',
  });
});

after(async () => {
  if (collection) {
    try {
      await pb.collections.delete(collection.id);
    } catch {
      // ignore
    }
  }
});

test('upload files with FormData and read them back via getURL', async () => {
  const form = new FormData();
  form.append('title', 'with files');
  form.append('doc', new Blob([TEXT], { type: 'text/plain' }), 'Notes (v1).txt');
  form.append('images', new Blob([PNG], { type: 'image/png' }), 'pixel.png');
  form.append('images', new Blob([PNG], { type: 'image/png' }), 'pixel2.png');
  record = await pb.collection(COLLECTION).create(form);

  assert.match(record.doc, /^notes_v1_[a-z0-9]{10}\.txt$/);
  assert.equal(record.images.length, 2);
  assert.match(record.images[0], /^pixel_[a-z0-9]{10}\.png$/);

  const { res, bytes } = await fetchBytes(pb.files.getURL(record, record.doc));
  assert.equal(res.status, 200);
  assert.equal(bytes.toString(), TEXT);
  assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');

  const img = await fetchBytes(pb.files.getURL(record, record.images[0]));
  assert.equal(img.res.status, 200);
  assert.deepEqual(img.bytes, PNG);
  assert.equal(img.res.headers.get('content-disposition'), `inline; filename="${record.images[0]}"`);

  const thumb = await fetchBytes(pb.files.getURL(record, record.images[0], { thumb: '10x10' }));
  assert.equal(thumb.res.status, 200);
  assert.equal(thumb.res.headers.get('content-type'), 'image/png');

  const dl = await fetchBytes(pb.files.getURL(record, record.images[0], { download: true }));
  assert.match(dl.res.headers.get('content-disposition'), /^attachment;/);
});

test('append, remove and replace with plain objects (the SDK converts to FormData)', async () => {
  const appended = await pb.collection(COLLECTION).update(record.id, {
    'images+': new Blob([PNG], { type: 'image/png' }),
  });
  assert.equal(appended.images.length, 3);
  assert.deepEqual(appended.images.slice(0, 2), record.images);

  const removed = await pb.collection(COLLECTION).update(record.id, { 'images-': [record.images[0]] });
  assert.deepEqual(removed.images, appended.images.slice(1));
  const gone = await fetch(pb.files.getURL(record, record.images[0]));
  assert.equal(gone.status, 404);

  const replaced = await pb.collection(COLLECTION).update(record.id, {
    doc: new File(['second version'], 'notes.txt', { type: 'text/plain' }),
  });
  assert.notEqual(replaced.doc, record.doc);
  const old = await fetch(pb.files.getURL(record, record.doc));
  assert.equal(old.status, 404);
  record = replaced;
});

test('protected files need a file token', async () => {
  const updated = await pb.collection(COLLECTION).update(record.id, {
    secret: new File(['classified'], 'secret.txt', { type: 'text/plain' }),
  });
  const plain = await fetch(pb.files.getURL(updated, updated.secret));
  assert.equal(plain.status, 200, 'viewRule "" makes even protected files public');

  await pb.collections.update(collection.id, { viewRule: null });
  const denied = await fetch(pb.files.getURL(updated, updated.secret));
  assert.equal(denied.status, 404);

  const token = await pb.files.getToken();
  assert.equal(typeof token, 'string');
  const { res, bytes } = await fetchBytes(pb.files.getURL(updated, updated.secret, { token }));
  assert.equal(res.status, 200);
  assert.equal(bytes.toString(), 'classified');
});

test('deleting the record deletes its files', async () => {
  await pb.collection(COLLECTION).delete(record.id);
  const res = await fetch(pb.files.getURL(record, record.images[0]));
  assert.equal(res.status, 404);
});
