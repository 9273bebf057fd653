// The advisor desk: the queue with summaries, take a conversation, read it, reply. The
// advisor token is kept in sessionStorage and sent as X-Advisor-Token. The queue and the
// open conversation arrive live over the WebSocket /v1/advisor/ws (the token goes in its
// first frame); while it cannot open, they are polled and the socket is tried again
// later. Takes, replies and closes go over REST. Everything shown is set with
// textContent, never innerHTML.
(function () {
  "use strict";
  const TOKEN_KEY = "allo.advisor.token";
  const NAME_KEY = "allo.advisor.name";
  const POLL_MS = 1500;
  const SOCKET_URL = window.location.origin.replace(/^http/, "ws") + "/v1/advisor/ws";
  const TYPING_EVERY_MS = 2000;

  const loginForm = document.getElementById("login-form");
  const tokenInput = document.getElementById("advisor-token");
  const nameInput = document.getElementById("advisor-name");
  const status = document.getElementById("advisor-status");
  const desk = document.getElementById("desk");
  const logout = document.getElementById("logout-button");
  const queue = document.getElementById("queue");
  const queueEmpty = document.getElementById("queue-empty");
  const panel = document.getElementById("conversation");
  const title = document.getElementById("conversation-title");
  const summary = document.getElementById("summary");
  const turns = document.getElementById("turns");
  const replyForm = document.getElementById("reply-form");
  const replyText = document.getElementById("reply-text");
  const closeButton = document.getElementById("close-button");

  const ROLES = { customer: "Client", assistant: "Assistant", advisor: "Conseiller" };
  const STATUSES = {
    bot: "avec l'assistant",
    waiting_advisor: "en attente d'un conseiller",
    with_advisor: "avec un conseiller",
    closed: "close",
  };
  let current = null; // the open conversation id
  let shownSeq = 0;
  let timer = null;
  const labels = new Map(); // button payload -> label in the open conversation
  let socket = null;
  let socketReady = false;
  let retryMs = 1000;
  let retryTimer = null;
  let typingSentAt = 0;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function stored(key) {
    try {
      return sessionStorage.getItem(key) || "";
    } catch (error) {
      return "";
    }
  }

  function store(key, value) {
    try {
      if (value) sessionStorage.setItem(key, value);
      else sessionStorage.removeItem(key);
    } catch (error) {
      /* storage disabled: the token lasts as long as the page */
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-Advisor-Token": stored(TOKEN_KEY) };
    const name = stored(NAME_KEY);
    // percent-encoded: a browser sends no header outside Latin-1 ("Łukasz", "陈伟")
    if (name) headers["X-Advisor-Name"] = encodeURIComponent(name);
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
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
    if (response.status === 401 || response.status === 503) {
      signOut(response.status === 401 ? "Jeton refusé." : "Accès conseiller non configuré sur le serveur.");
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function errorText(result) {
    return result.data && result.data.error ? result.data.error.message : "erreur " + result.status;
  }

  // -- queue ----------------------------------------------------------------------------
  function waited(since) {
    if (!since) return "";
    const minutes = Math.max(0, Math.round((Date.now() / 1000 - since) / 60));
    return minutes < 1 ? "à l'instant" : "depuis " + minutes + " min";
  }

  function renderQueue(items) {
    queue.replaceChildren();
    queueEmpty.hidden = items.length > 0;
    for (const item of items) {
      const s = item.summary || {};
      const li = el("li", "queue-item");
      li.dataset.id = item.conversation_id;
      li.appendChild(el("p", "wants", s.wants || "(demande inconnue)"));
      const meta = [
        "Motif : " + (s.reason || "—"),
        "Humeur : " + (s.sentiment || "—"),
        item.status === "with_advisor" ? "Pris par " + (item.advisor || "un conseiller") : "En attente " + waited(item.waiting_since),
      ];
      li.appendChild(el("p", "meta", meta.join(" · ")));
      if (item.last_customer_message) {
        li.appendChild(el("p", "last", "Dernier message : « " + item.last_customer_message + " »"));
      }
      const button = el("button", "take", item.status === "with_advisor" ? "Ouvrir" : "Prendre en charge");
      button.type = "button";
      button.addEventListener("click", () => take(item));
      li.appendChild(button);
      queue.appendChild(li);
    }
  }

  async function refreshQueue() {
    const result = await api("GET", "/v1/advisor/queue?include_taken=true");
    if (result.ok) renderQueue(result.data.items);
  }

  // -- conversation ---------------------------------------------------------------------
  function tutorialsDone(steps) {
    const counts = new Map();
    for (const step of steps || []) {
      const tutorial = String(step).split(":")[0];
      counts.set(tutorial, (counts.get(tutorial) || 0) + 1);
    }
    return Array.from(counts, (e) => e[0] + " (" + e[1] + " étapes)").join(", ");
  }

  function renderSummary(data) {
    summary.replaceChildren();
    const s = data.summary || {};
    const rows = [
      ["Demande", s.wants],
      ["Motif", s.reason],
      ["Tutoriel en cours", s.tutorial_id],
      ["Parcours suivis", tutorialsDone(s.steps_done)],
      ["Humeur", s.sentiment],
      ["Informations", Object.entries(s.entities || {}).map((e) => e[0] + " : " + e[1]).join(", ")],
      ["Statut", STATUSES[data.status] || data.status],
    ];
    for (const [label, value] of rows) {
      if (!value) continue;
      summary.append(el("dt", "", label), el("dd", "", String(value)));
    }
  }

  function turnText(turn) {
    const payload = turn.payload || {};
    if (turn.role === "customer" && payload.payload !== undefined && labels.has(payload.payload)) {
      return labels.get(payload.payload) + " (bouton)";
    }
    if (turn.text) return turn.text;
    if (payload.kind === "buttons") {
      for (const b of payload.buttons || []) labels.set(b.payload, b.label);
      return "Choix proposés : " + (payload.buttons || []).map((b) => b.label).join(" / ");
    }
    if (payload.kind === "handoff") return "Transfert vers un conseiller.";
    if (payload.kind === "image") return "[image : " + (payload.alt || "illustration") + "]";
    return "";
  }

  function renderTurns(list) {
    for (const turn of list) {
      if (turn.seq <= shownSeq) continue;
      shownSeq = turn.seq;
      const text = turnText(turn);
      if (!text) continue;
      const li = el("li", "turn turn-" + turn.role);
      li.appendChild(el("span", "who", (ROLES[turn.role] || turn.role) + " : "));
      li.appendChild(el("span", "text", text));
      turns.appendChild(li);
    }
  }

  function show(data) {
    title.textContent = "Conversation " + data.conversation_id;
    renderSummary(data);
    renderTurns(data.turns);
    const closed = data.status === "closed";
    replyText.disabled = closed;
    closeButton.disabled = closed;
  }

  async function take(item) {
    const id = item.conversation_id;
    const path = "/v1/advisor/conversations/" + encodeURIComponent(id);
    const result = item.status === "waiting_advisor" ? await api("POST", path + "/take") : await api("GET", path);
    if (!result.ok) {
      status.textContent = "Impossible d'ouvrir la conversation : " + errorText(result);
      return;
    }
    status.textContent = "";
    if (current && current !== id) sendFrame({ type: "unwatch", conversation_id: current });
    current = id;
    shownSeq = 0;
    labels.clear();
    turns.replaceChildren();
    panel.hidden = false;
    show(result.data);
    sendFrame({ type: "watch", conversation_id: id, after: shownSeq });
    replyText.focus();
    if (!socketReady) refreshQueue();
  }

  async function refreshConversation() {
    if (!current) return;
    const result = await api("GET", "/v1/advisor/conversations/" + encodeURIComponent(current));
    if (result.ok && result.data.conversation_id === current) show(result.data);
  }

  replyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = replyText.value.trim();
    if (!text || !current) return;
    const path = "/v1/advisor/conversations/" + encodeURIComponent(current) + "/messages";
    const result = await api("POST", path, { text: text });
    if (!result.ok) {
      status.textContent = "Réponse non envoyée : " + errorText(result);
      return;
    }
    status.textContent = "";
    replyText.value = "";
    renderTurns([result.data]);
  });

  closeButton.addEventListener("click", async () => {
    if (!current) return;
    const path = "/v1/advisor/conversations/" + encodeURIComponent(current) + "/close";
    const result = await api("POST", path);
    if (!result.ok) {
      status.textContent = "Impossible de clore : " + errorText(result);
      return;
    }
    show(result.data);
    if (!socketReady) refreshQueue();
  });

  replyText.addEventListener("input", () => {
    const now = Date.now();
    if (!current || now - typingSentAt < TYPING_EVERY_MS) return;
    typingSentAt = now;
    sendFrame({ type: "typing", conversation_id: current });
  });

  // -- live socket ----------------------------------------------------------------------
  function sendFrame(frame) {
    if (!socketReady) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch (error) {
      return false;
    }
  }

  function connect() {
    if (socket || !window.WebSocket || !stored(TOKEN_KEY)) return;
    let ws;
    try {
      ws = new WebSocket(SOCKET_URL);
    } catch (error) {
      return; // polling goes on
    }
    socket = ws;
    ws.addEventListener("open", () => {
      const auth = { type: "auth", advisor_token: stored(TOKEN_KEY) };
      if (stored(NAME_KEY)) auth.advisor_name = stored(NAME_KEY);
      ws.send(JSON.stringify(auth));
    });
    ws.addEventListener("message", (event) => {
      if (ws === socket) onFrame(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (ws === socket) onSocketClosed(event.code, event.reason || "");
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
      stopTimer();
      if (current) {
        sendFrame({ type: "watch", conversation_id: current, after: shownSeq });
        refreshConversation();
      }
    } else if (frame.type === "queue") {
      renderQueue(frame.items);
    } else if (frame.type === "turn" && frame.conversation_id === current) {
      renderTurns([frame.turn]);
    } else if (frame.type === "status" && frame.conversation_id === current) {
      refreshConversation(); // the summary and status line, over REST
    }
  }

  function onSocketClosed(code, reason) {
    socket = null;
    socketReady = false;
    if (desk.hidden) return;
    if (code === 1008) {
      signOut(/ALLO_ADVISOR_TOKEN/.test(reason) ? "Accès conseiller non configuré sur le serveur." : "Jeton refusé.");
      return;
    }
    startTimer(); // poll meanwhile
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
    socket = null;
    socketReady = false;
    if (ws) ws.close(1000);
  }
  // -- sign in / out --------------------------------------------------------------------
  function tick() {
    refreshQueue();
    refreshConversation();
  }

  function startTimer() {
    if (!timer) timer = window.setInterval(tick, POLL_MS);
  }

  function stopTimer() {
    if (timer) window.clearInterval(timer);
    timer = null;
  }

  function signIn() {
    loginForm.hidden = true;
    desk.hidden = false;
    tick();
    startTimer(); // until the socket is ready
    connect();
  }

  function signOut(message) {
    store(TOKEN_KEY, "");
    stopTimer();
    closeSocket();
    current = null;
    desk.hidden = true;
    panel.hidden = true;
    loginForm.hidden = false;
    status.textContent = message || "";
  }

  loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    store(TOKEN_KEY, tokenInput.value.trim());
    store(NAME_KEY, nameInput.value.trim());
    tokenInput.value = "";
    status.textContent = "";
    signIn();
  });
  logout.addEventListener("click", () => signOut("Déconnecté."));

  nameInput.value = stored(NAME_KEY);
  if (stored(TOKEN_KEY)) signIn();
})();
