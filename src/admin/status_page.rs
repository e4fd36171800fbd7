//! The live status page served at `GET /` of the admin listener: one self-contained HTML page
//! (no external assets) that polls the JSON API and offers the state-changing buttons, which
//! send the admin token typed into the page.

pub const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gatehouse status</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
 h1 { font-size: 1.3em; margin: 0 0 .5em; }
 h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
 table { border-collapse: collapse; }
 th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: left; }
 th { background: #f4f4f4; }
 .up { color: #137333; font-weight: 600; } .down { color: #b3261e; font-weight: 600; }
 .pending, .unchecked { color: #666; }
 .drain { background: #fff4ce; } .maint { background: #fde7e9; }
 button { margin-right: .3em; }
 #ro.on { color: #b3261e; font-weight: 700; }
 .muted { color: #666; } #error { color: #b3261e; }
</style>
</head>
<body>
<h1>gatehouse</h1>
<div class="muted">config <span id="checksum">-</span> loaded <span id="loaded">-</span> ·
 refreshed <span id="refreshed">-</span></div>
<p>Admin token: <input id="token" type="password" size="28" placeholder="needed for changes">
 <span id="error"></span></p>
<h2>Read-only mode: <span id="ro">-</span></h2>
<button id="readonly-toggle">toggle read-only</button> <span id="ro-detail" class="muted"></span>
<h2>Cache</h2>
<div id="cache">-</div>
<h2>TLS</h2>
<div id="tls">-</div>
<div id="cluster-box" hidden><h2>Cluster</h2><div id="cluster">-</div></div>
<h2>Address blocks</h2>
<div id="blocks">-</div>
<h2>Pools</h2>
<table id="servers"><thead><tr><th>pool</th><th>server</th><th>address</th><th>state</th>
<th>health</th><th>in flight</th><th>req/s</th><th>requests</th><th></th></tr></thead>
<tbody></tbody></table>
<script>
"use strict";
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("gatehouse-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("gatehouse-token", tokenInput.value));
let last = {}, lastTime = 0, readonlyOn = false;

async function api(method, path, body) {
  const headers = {};
  if (tokenInput.value) headers["Authorization"] = "Bearer " + tokenInput.value;
  if (body) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error || r.statusText) + " (" + r.status + ")");
  return data;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

async function act(pool, server, action) {
  try {
    await api("POST", `/api/pools/${encodeURIComponent(pool)}/servers/${encodeURIComponent(server)}/${action}`);
    document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = e.message; }
  refresh();
}

document.getElementById("readonly-toggle").addEventListener("click", async () => {
  try {
    await api("POST", "/api/readonly", { enabled: !readonlyOn, reason: "status page" });
    document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = e.message; }
  refresh();
});

async function refresh() {
  try {
    const [pools, ro, cache, config, tls] = await Promise.all([
      api("GET", "/api/pools"), api("GET", "/api/readonly"), api("GET", "/api/cache"), api("GET", "/api/config"),
      api("GET", "/api/tls")]);
    const blocks = await api("GET", "/api/blocks");
    const blocksEl = document.getElementById("blocks");
    blocksEl.textContent = blocks.blocks.length ? "" : `none (${blocks.refused} requests refused since start)`;
    for (const b of blocks.blocks) {
      const div = document.createElement("div");
      div.className = "block";
      div.textContent = `${b.cidr} until ${new Date(b.until * 1000).toLocaleString()} by ${b.by}` +
        (b.reason ? ` — ${b.reason}` : "");
      blocksEl.appendChild(div);
    }
    // 404 when this node is not in a cluster: the section stays hidden.
    const cluster = await api("GET", "/api/cluster").catch(() => null);
    const now = Date.now() / 1000;
    const tbody = document.querySelector("#servers tbody");
    tbody.textContent = "";
    const seen = {};
    for (const p of pools.pools) for (const s of p.servers) {
      const key = p.name + "/" + s.name;
      seen[key] = s.requests;
      const rate = lastTime && last[key] !== undefined ? (s.requests - last[key]) / (now - lastTime) : 0;
      const tr = document.createElement("tr");
      tr.id = "server-" + p.name + "-" + s.name;
      tr.className = s.state;
      cell(tr, p.name); cell(tr, s.name); cell(tr, s.address);
      cell(tr, s.state).dataset.field = "state";
      cell(tr, s.health, s.health);
      cell(tr, s.in_flight); cell(tr, rate.toFixed(1)); cell(tr, s.requests);
      const td = cell(tr, "");
      for (const action of ["drain", "maint", "ready"]) {
        const b = document.createElement("button");
        b.textContent = action;
        b.id = action + "-" + p.name + "-" + s.name;
        b.addEventListener("click", () => act(p.name, s.name, action));
        td.appendChild(b);
      }
      tbody.appendChild(tr);
    }
    last = seen; lastTime = now;
    readonlyOn = ro.active;
    const roEl = document.getElementById("ro");
    roEl.textContent = ro.active ? "ON" : "off";
    roEl.className = ro.active ? "on" : "";
    document.getElementById("ro-detail").textContent = ro.active
      ? `since ${new Date(ro.since * 1000).toLocaleString()}${ro.reason ? " — " + ro.reason : ""}${ro.until ? ", until " + new Date(ro.until * 1000).toLocaleString() : ""}`
      : `${ro.refused_writes} writes refused so far`;
    document.getElementById("cache").textContent = cache.enabled
      ? `hit ratio ${(cache.hit_ratio * 100).toFixed(1)}% · ${cache.objects} objects · ${(cache.stored_bytes / 1048576).toFixed(1)} of ${(cache.max_size / 1048576).toFixed(0)} MiB · ${cache.hits} hits, ${cache.misses} misses, ${cache.passes} passes` + (cache.snapshot && (cache.snapshot.loaded_objects || cache.snapshot.refused) ? ` · snapshot: ${cache.snapshot.refused ? 'refused' : `${cache.snapshot.loaded_objects} objects (${(cache.snapshot.loaded_bytes / 1048576).toFixed(1)} MiB) read in ${cache.snapshot.load_ms} ms`}` : '')
      : "disabled";
    const tlsEl = document.getElementById("tls");
    tlsEl.textContent = tls.listeners.length ? "" : "no TLS listener";
    const days = t => Math.floor((t - now) / 86400);
    for (const l of tls.listeners) {
      const div = document.createElement("div");
      const certs = l.certificates.map(c => `${c.names.join(", ")} (${c.days_left} days left)`);
      let text = `${l.listener}: ${l.profile}, ${l.versions.join("/")}, tickets ${l.session_tickets ? "on" : "off"}` +
        (certs.length ? ` · ${certs.join(" · ")}` : "");
      const a = l.acme;
      if (a) text += ` · ACME ${a.domains.join(", ")} (${a.challenge}): ` +
        (a.not_after ? `${days(a.not_after)} days left` : "no certificate yet") +
        `, next attempt ${new Date(a.next_attempt * 1000).toLocaleString()}, ${a.renewals} obtained, ${a.failures} failed` +
        (a.last_error ? ` — last error: ${a.last_error}` : "");
      div.textContent = text;
      tlsEl.appendChild(div);
    }
    document.getElementById("cluster-box").hidden = !cluster;
    if (cluster) {
      const nodes = cluster.nodes.map(n => `${n.node} r${n.applied_revision}${n.healthy ? "" : " (stopping)"}`);
      document.getElementById("cluster").textContent =
        `${cluster.cluster} · this node ${cluster.node} · etcd ${cluster.connected ? "connected" : "DISCONNECTED"}` +
        ` · applied revision ${cluster.applied_revision}` +
        (cluster.sync_age_ms !== null ? `, confirmed ${(cluster.sync_age_ms / 1000).toFixed(1)} s ago` : "") +
        ` · nodes: ${nodes.join(", ") || (cluster.nodes_error || "none")}` +
        (cluster.last_error ? ` — last error: ${cluster.last_error}` : "");
    }
    document.getElementById("checksum").textContent = config.checksum;
    document.getElementById("loaded").textContent = new Date(config.loaded_at * 1000).toLocaleString();
    document.getElementById("refreshed").textContent = new Date().toLocaleTimeString();
  } catch (e) { document.getElementById("error").textContent = e.message; }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"##;
