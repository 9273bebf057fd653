// The question page: posts to /v1/ask and renders the answer. Everything shown is set
// with textContent, never innerHTML, so text from documents or users cannot run.
(function () {
  "use strict";
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const button = document.getElementById("ask-button");
  const result = document.getElementById("result");
  const answer = document.getElementById("answer");
  const sourcesBlock = document.getElementById("sources-block");
  const sources = document.getElementById("sources");
  const status = document.getElementById("status");

  function render(data) {
    answer.textContent = data.answer;
    answer.classList.toggle("abstained", data.abstained);
    sources.replaceChildren();
    for (const c of data.citations) {
      const item = document.createElement("li");
      item.value = c.number;
      const link = document.createElement("a");
      link.href = c.link;
      link.textContent = c.title;
      item.appendChild(link);
      if (c.heading_path.length > 1) {
        const where = document.createElement("span");
        where.className = "where";
        where.textContent = " — " + c.heading_path.slice(1).join(" › ");
        item.appendChild(where);
      }
      const excerpt = document.createElement("p");
      excerpt.className = "excerpt";
      excerpt.textContent = c.excerpt;
      item.appendChild(excerpt);
      sources.appendChild(item);
    }
    sourcesBlock.hidden = data.citations.length === 0;
    result.hidden = false;
  }

  async function ask(question) {
    status.textContent = "Recherche en cours…";
    button.disabled = true;
    try {
      const response = await fetch("/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: question }),
      });
      const data = await response.json();
      if (!response.ok) {
        status.textContent = "Erreur : " + (data.error ? data.error.message : response.status);
        return;
      }
      status.textContent = "";
      render(data);
    } catch (error) {
      status.textContent = "Le serveur ne répond pas. Réessayez dans un instant.";
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (question) { ask(question); }
  });
  for (const example of document.querySelectorAll(".example")) {
    example.addEventListener("click", function () {
      input.value = example.textContent;
      ask(example.textContent);
    });
  }
})();
