// Drives queue-hooks api with the platform's own client, unchanged: webitel-sdk's
// QueueHookServiceApi, basePath ending in /api, the token as apiKey (sent in X-Webitel-Access).
// Usage: node drive.cjs BASE_URL TOKEN QUEUE_ID CRM_ID ALERTS_ID; prints one JSON object.
const { Configuration, QueueHookServiceApi } = require("webitel-sdk");

async function main() {
  const [basePath, apiKey, queue, crm, alerts] = process.argv.slice(2);
  const q = Number(queue);
  const api = new QueueHookServiceApi(new Configuration({ basePath, apiKey }));
  const out = {};
  const created = await api.createQueueHook(q, { event: "joined", schema: { id: crm }, enabled: true });
  out.created = created.data;
  const second = await api.createQueueHook(q, { event: "leaving", schema: { id: Number(alerts) } });
  out.second = second.data;
  const id = Number(created.data.id);
  out.read = (await api.readQueueHook(q, id)).data;
  out.search = (await api.searchQueueHook(q, 1, 1, undefined, "-id", ["id", "event"])).data;
  out.page2 = (await api.searchQueueHook(q, 2, 1, undefined, "-id")).data;
  out.byQ = (await api.searchQueueHook(q, 1, 40, "lea*")).data;
  out.byId = (await api.searchQueueHook(q, 1, 40, undefined, undefined, undefined, [id])).data;
  out.bySchema = (await api.searchQueueHook(q, 1, 40, undefined, undefined, undefined, undefined, [Number(alerts)])).data;
  out.byEvent = (await api.searchQueueHook(q, 1, 40, undefined, undefined, undefined, undefined, undefined, ["joined", "missed"])).data;
  out.updated = (await api.updateQueueHook(q, id, { event: "missed", schema: { id: alerts }, enabled: false })).data;
  out.patched = (await api.patchQueueHook(q, id, { enabled: true, event: "offering", fields: ["enabled"] })).data;
  out.deleted = (await api.deleteQueueHook(q, id)).data;
  try {
    await api.readQueueHook(q, id);
    out.afterDelete = "found";
  } catch (err) {
    out.afterDelete = { status: err.response && err.response.status, data: err.response && err.response.data };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  const r = err.response;
  process.stderr.write(`failed: ${err.message} ${r ? JSON.stringify(r.data) : ""}\n`);
  process.exit(1);
});
