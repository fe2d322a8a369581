// A realtime subscriber through the official JS SDK, for the server lifecycle tests.
// Subscribes to COLLECTION and prints one line per happening: "subscribed", "event <action> <id>",
// "disconnected". Runs until killed.
//
// Usage: KB_URL=... COLLECTION=... node --experimental-eventsource sdk_subscriber.mjs

import PocketBase from 'pocketbase';

const pb = new PocketBase(process.env.KB_URL);
pb.autoCancellation(false);
pb.realtime.onDisconnect = () => console.log('disconnected');
await pb.collection(process.env.COLLECTION).subscribe('*', (e) => console.log(`event ${e.action} ${e.record.id}`));
console.log('subscribed');
setInterval(() => {}, 1000);
