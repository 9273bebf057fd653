// The NOC console: live incidents (Server-Sent Events), drill-down, acknowledge/resolve,
// silences and maintenance windows. Everything shown is set with textContent, never
// innerHTML: alarm fields come from the network and must not run as code. The operator
// token is kept in sessionStorage and sent as X-NOC-Token; the event stream is read with
// fetch (EventSource cannot send a header, and a token in the URL would end up in logs).
(function () {
  "use strict";
  const PAGE = 50;
  const STATUS_FR = { new: "nouveau", acknowledged: "acquitté", resolved: "résolu" };
  const STATE_FR = { open: "ouvert", closed: "clos" };
  const REASON_FR = {
    head: "tête (cause probable)", duplicate: "doublon", flapping: "oscillation",
    transient: "transitoire", inhibited: "inhibée", caused: "conséquence",
    root: "autre cause probable", grouped: "regroupée", maintenance: "maintenance",
  };
  const TOKEN_KEY = "allo.noc.token";
  const $ = (id) => document.getElementById(id);
  const rows = $("incident-rows");
  const status = $("status");
  const filters = $("filters");
  let offset = 0;
  let selected = null;
  let membersShown = 0;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function when(epoch) {
    if (epoch === null || epoch === undefined) return "—";
    return new Date(epoch * 1000).toLocaleString("fr-FR");
  }
  function say(text) { status.textContent = text; }
  // a request that failed because the console signed out (a refused token) leaves the
  // sign-out message in place: it says what to do, the request's error does not
  function fail(error) { if (!$("noc-desk").hidden) say("Erreur : " + error.message); }

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (error) { return memoryToken; }
  }
  let memoryToken = "";
  function keepToken(value) {
    memoryToken = value;
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (error) { /* storage disabled: the token lasts as long as the page */ }
  }

  async function api(method, url, body) {
    const options = { method: method, headers: { Accept: "application/json", "X-NOC-Token": token() } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    if (response.status === 401 || response.status === 503) {
      const data = await response.json().catch(() => ({}));
      const message = data.error ? data.error.message : String(response.status);
      // another server process runs the NOC engine: the token is fine, say why and stay
      if (data.error && data.error.type === "EngineBusyError") throw new Error(message);
      signOut(response.status === 401 ? "Jeton refusé : saisissez le jeton opérateur NOC."
        : "Console NOC non configurée : définissez ALLO_NOC_TOKEN ou ALLO_NOC_OPERATORS sur le serveur.");
      throw new Error(message);
    }
    if (response.status === 204) return null;
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : String(response.status));
    return data;
  }

  function query() {
    const form = new FormData(filters);
    const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    for (const key of ["status", "state", "device", "alarm_type"]) {
      const value = String(form.get(key) || "").trim();
      if (value) params.set(key, value);
    }
    return params;
  }
  function matchesFilters(item) {
    const form = new FormData(filters);
    if (form.get("status") && item.status !== form.get("status")) return false;
    if (form.get("state") && item.state !== form.get("state")) return false;
    if (form.get("hide_silenced") && item.silenced_by && item.silenced_by.length) return false;
    const device = String(form.get("device") || "").trim();
    const devices = item.devices || [];
    // the list is cut at 20 devices: only a whole list can say the device is not there
    const whole = devices.length >= (item.device_count || 0);
    if (device && whole && !devices.includes(device) && item.head.device !== device) return false;
    const type = String(form.get("alarm_type") || "").trim();
    if (type && item.head.alarm_type !== type) return false;
    return true;
  }

  function row(item) {
    const tr = el("tr", null, "incident");
    tr.dataset.id = item.id;
    if (item.silenced_by && item.silenced_by.length) tr.classList.add("silenced");
    if (selected === item.id) tr.classList.add("selected");
    const badge = el("span", STATUS_FR[item.status] || item.status, "badge " + item.status);
    const first = el("td"); first.appendChild(badge);
    if (item.kind === "maintenance") first.appendChild(el("span", " maintenance", "meta"));
    if (item.silenced_by && item.silenced_by.length) first.appendChild(el("span", " silencieux", "meta"));
    tr.appendChild(first);
    tr.appendChild(el("td", when(item.started_at)));
    tr.appendChild(el("td", item.head.alarm_type + " sur " + item.head.device));
    tr.appendChild(el("td", item.size));
    tr.appendChild(el("td", item.device_count));
    const folded = Object.entries(item.folded || {}).map(([k, n]) => n + " " + (REASON_FR[k] || k));
    tr.appendChild(el("td", folded.join(", ") || "—"));
    tr.appendChild(el("td", STATE_FR[item.state] || item.state));
    const actions = el("td");
    if (item.status === "new") actions.appendChild(action("Acquitter", item.id, "ack"));
    if (item.status !== "resolved") actions.appendChild(action("Résoudre", item.id, "resolve"));
    tr.appendChild(actions);
    tr.addEventListener("click", () => show(item.id));
    return tr;
  }
  function action(label, id, verb) {
    const button = el("button", label, "small");
    button.type = "button";
    button.addEventListener("click", async (event) => {
      event.stopPropagation();
      button.disabled = true;
      try {
        const updated = await api("POST", "/v1/incidents/" + encodeURIComponent(id) + "/" + verb, {});
        upsert(updated);
        if (selected === id) show(id);
        say(verb === "ack" ? "Incident acquitté." : "Incident résolu.");
      } catch (error) { fail(error); button.disabled = false; }
    });
    return button;
  }
  function upsert(item) {
    const existing = rows.querySelector('tr[data-id="' + CSS.escape(item.id) + '"]');
    if (!matchesFilters(item)) { if (existing) existing.remove(); return; }
    const fresh = row(item);
    fresh.classList.add("flash");
    if (existing) existing.replaceWith(fresh);
    else if (offset === 0) rows.prepend(fresh);
  }

  async function load() {
    try {
      const data = await api("GET", "/v1/incidents?" + query().toString());
      rows.replaceChildren(...data.items.filter(matchesFilters).map(row));
      $("page").textContent = data.total ? (offset + 1) + "–" + Math.min(offset + PAGE, data.total) + " sur " + data.total : "aucun incident";
      $("prev").disabled = offset === 0;
      $("next").disabled = offset + PAGE >= data.total;
    } catch (error) { fail(error); }
  }
  async function counts() {
    try {
      const data = await api("GET", "/v1/noc/status");
      const c = data.counts;
      $("counts").textContent = c.alarms + " alarmes reçues → " + c.incidents + " incidents (" + c.open_incidents + " ouverts)";
      // a personal secret names its holder: the server records actions under that name
      $("operator").textContent = data.operator ? "Connecté en tant que " + data.operator : "Jeton partagé";
      for (const input of document.querySelectorAll('input[name="created_by"]')) input.closest("label").hidden = Boolean(data.operator);
    } catch (error) { /* the list says it already */ }
  }

  async function show(id, more) {
    selected = id;
    for (const tr of rows.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    const tr = rows.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
    if (tr) tr.classList.add("selected");
    const offsetMembers = more ? membersShown : 0;
    try {
      const data = await api("GET", "/v1/incidents/" + encodeURIComponent(id) + "?members_limit=100&members_offset=" + offsetMembers);
      $("detail").hidden = false;
      $("detail-title").textContent = "Incident " + data.id + " — " + (STATUS_FR[data.status] || data.status);
      $("detail-explanation").textContent = data.explanation.fr || "—";
      $("detail-explanation-en").textContent = data.explanation.en || "—";
      const meta = [data.size + " alarme(s)", data.devices.length + " équipement(s) : " + data.devices.slice(0, 15).join(", "),
        "début " + when(data.started_at), "dernière " + when(data.last_at)];
      if (data.acknowledged_at) meta.push("acquitté le " + when(data.acknowledged_at) + (data.acknowledged_by ? " par " + data.acknowledged_by : ""));
      if (data.resolved_at) meta.push("résolu le " + when(data.resolved_at) + (data.resolved_by ? " par " + data.resolved_by : ""));
      if (data.silenced_by && data.silenced_by.length) meta.push("silence " + data.silenced_by.join(", "));
      $("detail-meta").textContent = meta.join(" · ");
      const body = $("member-rows");
      if (!more) body.replaceChildren();
      for (const m of data.members) {
        const r = el("tr");
        r.appendChild(el("td", m.row));
        r.appendChild(el("td", m.alarm_type + (m.id.startsWith("row-") ? "" : " (" + m.id + ")")));
        r.appendChild(el("td", m.device));
        r.appendChild(el("td", when(m.raised_at)));
        r.appendChild(el("td", REASON_FR[m.reason] || m.reason || "en cours"));
        r.appendChild(el("td", m.detail + (m.folded_under !== null && m.folded_under !== undefined ? " (sous le rang " + m.folded_under + ")" : "")));
        body.appendChild(r);
      }
      membersShown = offsetMembers + data.members.length;
      $("more-members").hidden = membersShown >= data.members_total;
    } catch (error) { fail(error); }
  }

  async function loadSilences() {
    const data = await api("GET", "/v1/silences");
    const list = $("silences");
    list.replaceChildren();
    for (const s of data.items.slice().reverse()) {
      const item = el("li");
      const what = s.matchers.map((m) => m.name + " " + m.op + " " + m.value).join(", ");
      item.appendChild(el("span", what + " — jusqu'au " + when(s.ends_at) + " (" + ({ active: "actif", pending: "à venir", expired: "expiré" }[s.state] || s.state) + ")" + (s.comment ? " — " + s.comment : "")));
      if (s.state !== "expired") {
        const button = el("button", "Expirer", "small secondary");
        button.type = "button";
        button.addEventListener("click", async () => {
          try { await api("DELETE", "/v1/silences/" + encodeURIComponent(s.id)); await loadSilences(); load(); }
          catch (error) { fail(error); }
        });
        item.appendChild(document.createTextNode(" "));
        item.appendChild(button);
      }
      list.appendChild(item);
    }
  }
  async function loadWindows() {
    const data = await api("GET", "/v1/maintenance");
    const list = $("windows");
    list.replaceChildren();
    for (const w of data.items) {
      const item = el("li");
      item.appendChild(el("span", w.devices.join(", ") + " — du " + when(w.starts_at) + " au " + when(w.ends_at) + (w.comment ? " — " + w.comment : "")));
      const button = el("button", "Supprimer", "small secondary");
      button.type = "button";
      button.addEventListener("click", async () => {
        try { await api("DELETE", "/v1/maintenance/" + encodeURIComponent(w.id)); await loadWindows(); }
        catch (error) { fail(error); }
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  $("silence-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    let name = String(form.get("name"));
    if (name === "label") {
      const label = String(form.get("label") || "").trim();
      if (!label) { say("Erreur : nommez l'étiquette (par exemple instance)."); return; }
      name = "label." + label;
    }
    try {
      await api("POST", "/v1/silences", {
        matchers: [{ name: name, op: form.get("op"), value: form.get("value") }],
        duration_seconds: Number(form.get("minutes")) * 60,
        created_by: form.get("created_by"), comment: form.get("comment"),
      });
      event.target.reset();
      say("Silence créé.");
      await loadSilences(); load();
    } catch (error) { fail(error); }
  });
  $("maintenance-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const epoch = (value) => new Date(String(value)).getTime() / 1000;
    try {
      await api("POST", "/v1/maintenance", {
        devices: String(form.get("devices")).split(",").map((d) => d.trim()).filter(Boolean),
        starts_at: epoch(form.get("starts_at")), ends_at: epoch(form.get("ends_at")),
        created_by: form.get("created_by"), comment: form.get("comment"),
      });
      event.target.reset();
      say("Fenêtre de maintenance créée.");
      await loadWindows();
    } catch (error) { fail(error); }
  });
  filters.addEventListener("submit", (event) => { event.preventDefault(); offset = 0; load(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("next").addEventListener("click", () => { offset += PAGE; load(); });
  $("more-members").addEventListener("click", () => { if (selected) show(selected, true); });

  // Server-Sent Events read with fetch: the same format as EventSource, with the token
  // in a header; reconnects after `retry` ms (default 3 s) with Last-Event-ID.
  let stream = null;
  let lastEventId = null;
  let pending = null;
  function dispatch(type, data) {
    if (type === "incident") {
      const event = JSON.parse(data);
      upsert(event.incident);
      if (selected === event.incident.id && !pending) {
        pending = setTimeout(() => { pending = null; show(selected); }, 500);
      }
    } else if (type === "silence") { loadSilences(); load(); }
    else if (type === "maintenance" || type === "maintenance_deleted") loadWindows();
    // the server could not replay what was missed (a restart, another worker, a long
    // gap): what is shown may be stale, read it all again
    else if (type === "resync") { load(); counts(); loadSilences(); loadWindows(); }
  }
  async function live() {
    const badge = $("live");
    const controller = new AbortController();
    stream = controller;
    let retry = 3000;
    let listening = false;
    while (stream === controller) {
      try {
        const headers = { Accept: "text/event-stream", "X-NOC-Token": token() };
        if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
        const response = await fetch("/v1/incidents/stream", { headers: headers, signal: controller.signal });
        if (response.status === 401) { signOut("Jeton refusé."); return; }
        if (response.status === 503) {
          const data = await response.json().catch(() => ({}));
          if (!(data.error && data.error.type === "EngineBusyError")) {
            signOut("Console NOC non configurée sur le serveur."); return;
          }
          say("Flux en direct indisponible ici : " + data.error.message);
          throw new Error("503");  // another server process runs the engine: retry later
        }
        if (!response.ok || !response.body) throw new Error(String(response.status));
        badge.textContent = "en direct"; badge.className = "live on";
        // the lists were first read before the stream listened: read them once more now
        // that it does, so that nothing that happened in between is missing
        if (!listening) { listening = true; load(); counts(); }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let type = "message"; const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "event") type = text;
              else if (field === "data") data.push(text);
              else if (field === "id") lastEventId = text;
              else if (field === "retry" && /^\d+$/.test(text)) retry = Number(text);
            }
            if (data.length) dispatch(type, data.join("\n"));
          }
        }
      } catch (error) {
        if (stream !== controller) return;
      }
      badge.textContent = "reconnexion…"; badge.className = "live off";
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  }

  let ticker = null;
  function signIn() {
    $("noc-login").hidden = true;
    $("noc-desk").hidden = false;
    load(); counts(); loadSilences(); loadWindows(); live();
    if (ticker === null) ticker = setInterval(counts, 10000);
  }
  function signOut(message) {
    keepToken("");
    if (stream) { stream.abort(); stream = null; }
    if (ticker !== null) { clearInterval(ticker); ticker = null; }
    const badge = $("live"); badge.textContent = "hors ligne"; badge.className = "live off";
    $("noc-desk").hidden = true;
    $("noc-login").hidden = false;
    say(message || "");
  }
  $("noc-login").addEventListener("submit", (event) => {
    event.preventDefault();
    keepToken($("noc-token").value.trim());
    $("noc-token").value = "";
    say("");
    signIn();
  });
  $("noc-logout").addEventListener("click", () => signOut("Déconnecté."));

  if (token()) signIn(); else signOut("");
})();
