// The embeddable chat widget. One tag is enough on any page:
//   <script src="https://host/static/widget.js" defer></script>
// It injects a floating "Une question ?" button and a chat panel, loads widget.css and
// talks to /v1/conversations on the script's own origin. The conversation id and the
// customer token are kept in sessionStorage, so a reload resumes the conversation.
// Live updates (advisor replies, the advisor typing, other tabs) come over the WebSocket
// /v1/conversations/{id}/ws, which also carries the messages; when it cannot open, the
// widget polls every 1.5 s and posts over REST, and tries the socket again later. A
// message keeps its id across both paths, so a retry is never processed twice.
// Everything shown is set with textContent, never innerHTML, so text from customers,
// advisors or documents cannot run.
(function () {
  "use strict";
  if (window.__alloWidget) return;
  window.__alloWidget = true;

  const script =
    document.currentScript || document.querySelector('script[src*="/static/widget.js"]');
  const ORIGIN = new URL(script ? script.src : "/", window.location.href).origin;
  const STORE_KEY = "allo.widget.conversation";
  const POLL_MS = 1500;
  const SOCKET_URL = ORIGIN.replace(/^http/, "ws"); // https -> wss
  const SOCKET_REPLY_MS = 20000; // then the message is sent again over REST (same id)
  const ADVISOR_TYPING_MS = 5000;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "m-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  // -- stylesheet and DOM ---------------------------------------------------------------
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = ORIGIN + "/static/widget.css";
  document.head.appendChild(css);

  const root = el("div", "allo-w");
  root.id = "allo-widget";
  const launcher = el("button", "allo-w-launcher", "Une question ?");
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "allo-widget-panel");

  const panel = el("section", "allo-w-panel");
  panel.id = "allo-widget-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", "Assistance en ligne");

  const header = el("header", "allo-w-header");
  header.appendChild(el("span", "allo-w-title", "Assistance en ligne"));
  const close = el("button", "allo-w-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Fermer la discussion");
  header.appendChild(close);

  const log = el("div", "allo-w-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  const typing = el("div", "allo-w-typing");
  typing.hidden = true;
  typing.setAttribute("aria-label", "L'assistant écrit…");
  for (let i = 0; i < 3; i++) typing.appendChild(el("span", "allo-w-dot"));
  const quick = el("div", "allo-w-quick");

  const form = el("form", "allo-w-form");
  const input = el("input", "allo-w-input");
  input.type = "text";
  input.maxLength = 2000;
  input.autocomplete = "off";
  input.placeholder = "Écrivez votre message…";
  input.setAttribute("aria-label", "Votre message");
  const send = el("button", "allo-w-send", "Envoyer");
  send.type = "submit";
  form.append(input, send);

  panel.append(header, log, typing, quick, form);
  root.append(launcher, panel);

  // -- state ----------------------------------------------------------------------------
  let conversation = load(); // {id, token} or null
  let lastSeq = 0;
  const seen = new Set(); // turn seqs already shown
  const sentIds = new Set(); // message ids of this page's own messages (shown at once)
  const labels = new Map(); // button payload -> label, to show past choices by their label
  let pending = 0;
  let pollTimer = null;
  let greeted = false;
  let socket = null; // the WebSocket, while it is open or opening
  let socketReady = false; // authenticated: messages may go through it
  let retryMs = 1000;
  let retryTimer = null;
  const waiting = new Map(); // message id -> {resolve, reject, timer} of messages sent on it
  let advisorTyping = false;
  let advisorTypingTimer = null;

  function load() {
    try {
      const data = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      return data && data.id && data.token ? data : null;
    } catch (error) {
      return null;
    }
  }

  function save() {
    try {
      if (conversation) sessionStorage.setItem(STORE_KEY, JSON.stringify(conversation));
      else sessionStorage.removeItem(STORE_KEY);
    } catch (error) {
      /* storage disabled: the conversation lasts as long as the page */
    }
  }

  function forget() {
    conversation = null;
    lastSeq = 0;
    seen.clear();
    save();
    stopPolling();
    closeSocket();
  }

  // -- rendering ------------------------------------------------------------------------
  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function bubble(role, text, label) {
    const item = el("div", "allo-w-msg allo-w-" + role);
    if (label) item.appendChild(el("span", "allo-w-who", label));
    item.appendChild(el("p", "allo-w-text", text));
    log.appendChild(item);
    scrollDown();
    return item;
  }

  function note(text) {
    const item = el("div", "allo-w-note", text);
    log.appendChild(item);
    scrollDown();
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, ORIGIN);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  function citations(item, list) {
    if (!list || !list.length) return;
    const box = el("ol", "allo-w-sources");
    for (const c of list) {
      const li = el("li");
      li.value = c.number;
      const href = c.url ? safeUrl(c.url) : null;
      if (href) {
        const link = el("a", "allo-w-source", c.title || c.source);
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        li.appendChild(link);
      } else {
        li.appendChild(el("span", "allo-w-source", c.title || c.source));
      }
      box.appendChild(li);
    }
    item.appendChild(box);
  }

  function showImage(payload) {
    const src = payload.url ? safeUrl(payload.url) : null;
    if (!src || new URL(src).origin !== ORIGIN) return; // only the tutorial images route
    const figure = el("figure", "allo-w-msg allo-w-bot allo-w-figure");
    const image = el("img", "allo-w-img");
    image.alt = String(payload.alt || "Illustration");
    image.loading = "lazy";
    image.addEventListener("load", scrollDown);
    image.src = src;
    figure.appendChild(image);
    log.appendChild(figure);
    scrollDown();
  }

  function showButtons(buttons) {
    quick.replaceChildren();
    for (const b of buttons) labels.set(b.payload, b.label);
    for (const b of buttons) {
      const button = el("button", "allo-w-reply", b.label);
      button.type = "button";
      button.dataset.payload = b.payload;
      button.addEventListener("click", () => sendMessage({ payload: b.payload }, b.label));
      quick.appendChild(button);
    }
  }

  function renderTurn(turn) {
    if (seen.has(turn.seq)) return;
    seen.add(turn.seq);
    if (turn.seq > lastSeq) lastSeq = turn.seq;
    const payload = turn.payload || {};
    if (turn.role === "customer") {
      if (turn.message_id && sentIds.has(turn.message_id)) return;
      // A button choice is stored as its payload: show the button's label instead.
      const choice = payload.payload !== undefined ? labels.get(payload.payload) : undefined;
      bubble("customer", choice || turn.text);
      quick.replaceChildren();
    } else if (turn.role === "advisor") {
      setAdvisorTyping(false);
      bubble("advisor", turn.text, "Conseiller");
      quick.replaceChildren();
    } else if (payload.kind === "buttons") {
      showButtons(payload.buttons || []);
    } else if (payload.kind === "handoff") {
      note("Un conseiller va prendre la suite. Restez sur cette page, il vous répondra ici.");
    } else if (payload.kind === "image") {
      showImage(payload);
    } else if (turn.text) {
      const item = bubble("bot", turn.text);
      citations(item, payload.citations);
    }
  }

  function renderStatus(status) {
    if (status === "closed") {
      note("La conversation est terminée. Écrivez à nouveau pour en commencer une autre.");
      quick.replaceChildren();
      forget();
    }
  }

  function showTyping() {
    const on = pending > 0 || advisorTyping;
    typing.setAttribute("aria-label", advisorTyping ? "Le conseiller écrit…" : "L'assistant écrit…");
    typing.hidden = !on;
    if (on) scrollDown();
  }

  function setAdvisorTyping(on) {
    advisorTyping = on;
    if (advisorTypingTimer) window.clearTimeout(advisorTypingTimer);
    advisorTypingTimer = on ? window.setTimeout(() => setAdvisorTyping(false), ADVISOR_TYPING_MS) : null;
    showTyping();
  }

  // -- API ------------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (conversation) headers["X-Customer-Token"] = conversation.token;
    const response = await fetch(ORIGIN + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  async function open() {
    const result = await api("POST", "/v1/conversations");
    if (!result.ok) throw new Error("open failed");
    conversation = { id: result.data.conversation_id, token: result.data.customer_token };
    save();
    goLive();
  }

  async function sendMessage(message, shown) {
    const text = (shown || "").trim();
    if (!text) return;
    quick.replaceChildren();
    const messageId = newId();
    sentIds.add(messageId);
    bubble("customer", text);
    pending += 1;
    showTyping();
    send.disabled = true;
    try {
      if (!conversation) await open();
      let result = await deliver(messageId, message);
      if (!result.ok && (result.status === 404 || result.status === 401)) {
        forget(); // the conversation is gone (server reset): start a new one
        await open();
        result = await post(messageId, message);
      }
      if (!result.ok) {
        if (result.status === 409 && /closed/.test(JSON.stringify(result.data))) {
          forget();
          note("La conversation était terminée. Renvoyez votre message pour en commencer une autre.");
        } else if (result.status === 422) {
          note("Ce message ne peut pas être envoyé (vide ou trop long, 2 000 caractères au plus).");
        } else {
          note("Désolé, une erreur est survenue. Réessayez dans un instant.");
        }
        return;
      }
      for (const turn of result.data.turns) renderTurn(turn);
      renderStatus(result.data.status);
    } catch (error) {
      note("Le service ne répond pas. Vérifiez votre connexion et réessayez.");
    } finally {
      pending -= 1;
      showTyping();
      send.disabled = false;
    }
  }

  function post(messageId, message) {
    const body = Object.assign({ message_id: messageId }, message);
    return api("POST", "/v1/conversations/" + encodeURIComponent(conversation.id) + "/messages", body);
  }

  // Over the socket when it is ready, else (or if it fails midway) over REST with the
  // same message id: the server answers a repeated id with the stored reply.
  async function deliver(messageId, message) {
    if (socketReady) {
      try {
        return await viaSocket(messageId, message);
      } catch (error) {
        /* the socket closed or stayed silent: REST below */
      }
    }
    return post(messageId, message);
  }

  const ERROR_STATUS = { ConversationConflict: 409, NotFoundError: 404 };

  function viaSocket(messageId, message) {
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        waiting.delete(messageId);
        reject(new Error("no reply on the socket"));
      }, SOCKET_REPLY_MS);
      waiting.set(messageId, { resolve: resolve, reject: reject, timer: timer });
      try {
        socket.send(JSON.stringify(Object.assign({ type: "message", message_id: messageId }, message)));
      } catch (error) {
        window.clearTimeout(timer);
        waiting.delete(messageId);
        reject(error);
      }
    });
  }

  function answered(messageId, result) {
    const entry = waiting.get(messageId);
    if (!entry) return;
    waiting.delete(messageId);
    window.clearTimeout(entry.timer);
    entry.resolve(result);
  }

  // -- live socket ----------------------------------------------------------------------
  function goLive() {
    if (window.WebSocket) connect();
    else startPolling();
  }

  function connect() {
    if (!conversation || socket) return;
    const conv = conversation;
    let ws;
    try {
      ws = new WebSocket(SOCKET_URL + "/v1/conversations/" + encodeURIComponent(conv.id) + "/ws");
    } catch (error) {
      startPolling();
      return;
    }
    socket = ws;
    ws.addEventListener("open", () => {
      // The token goes in the first frame: never in the URL, which servers log.
      ws.send(JSON.stringify({ type: "auth", customer_token: conv.token, after: lastSeq }));
    });
    ws.addEventListener("message", (event) => {
      if (ws === socket) onFrame(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (ws === socket) onSocketClosed(event.code);
    });
  }

  function onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (frame.type === "ready") {
      socketReady = true;
      retryMs = 1000;
      stopPolling();
      renderStatus(frame.status);
    } else if (frame.type === "turn") {
      renderTurn(frame.turn);
    } else if (frame.type === "status") {
      renderStatus(frame.status);
    } else if (frame.type === "typing") {
      setAdvisorTyping(true);
    } else if (frame.type === "ack") {
      answered(frame.message_id, { ok: true, status: 200, data: { turns: [], status: frame.status } });
    } else if (frame.type === "error" && frame.message_id) {
      const status = ERROR_STATUS[frame.error.type] || 422;
      answered(frame.message_id, { ok: false, status: status, data: { error: frame.error } });
    }
  }

  function dropSocket() {
    socket = null;
    socketReady = false;
    for (const entry of waiting.values()) {
      window.clearTimeout(entry.timer);
      entry.reject(new Error("socket closed"));
    }
    waiting.clear();
  }

  function onSocketClosed(code) {
    dropSocket();
    if (!conversation) return;
    startPolling(); // meanwhile, and for good if the socket never opens
    if (code === 1008) {
      poll(); // refused: REST tells whether the conversation is gone
      return;
    }
    if (!retryTimer) {
      retryTimer = window.setTimeout(() => {
        retryTimer = null;
        connect();
      }, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    }
  }

  function closeSocket() {
    if (retryTimer) window.clearTimeout(retryTimer);
    retryTimer = null;
    const ws = socket;
    dropSocket();
    if (ws) ws.close(1000);
    setAdvisorTyping(false);
  }

  async function poll() {
    if (!conversation || pending > 0) return;
    try {
      const id = encodeURIComponent(conversation.id);
      const result = await api("GET", "/v1/conversations/" + id + "?after=" + lastSeq);
      if (result.ok) {
        if (pending > 0) return; // a send's reply will show these turns
        for (const turn of result.data.turns) renderTurn(turn);
        renderStatus(result.data.status);
      } else if (result.status === 404 || result.status === 401) {
        forget();
      }
    } catch (error) {
      /* offline for a moment: the next poll tries again */
    }
  }

  function startPolling() {
    if (!pollTimer) pollTimer = window.setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  // -- events ---------------------------------------------------------------------------
  function toggle(show) {
    panel.hidden = !show;
    launcher.setAttribute("aria-expanded", String(show));
    root.classList.toggle("allo-w-open", show);
    if (show) {
      if (!greeted && !conversation) {
        greeted = true;
        bubble("bot", "Bonjour ! Posez votre question ou décrivez votre problème.");
      }
      input.focus();
      scrollDown();
    }
  }

  launcher.addEventListener("click", () => toggle(panel.hidden));
  close.addEventListener("click", () => toggle(false));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendMessage({ text: text }, text);
  });

  function mount() {
    document.body.appendChild(root);
    if (conversation) {
      greeted = true;
      if (window.WebSocket) connect(); // resume: the socket replays the stored turns
      else {
        poll(); // resume: show the stored turns, then keep polling
        startPolling();
      }
    }
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
