/* The dashboard's chat box: posts the question to POST /api/v1/ask with the session's CSRF
   token and shows the answer, its numbers' source (tool, arguments, period) and a link to the
   view with the same figures. Text only (textContent), never HTML from the answer. */
(function () {
  var form = document.getElementById("ask-form");
  var input = document.getElementById("ask-question");
  var log = document.getElementById("ask-log");
  if (!form || !input || !log) { return; }
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";

  function lang() { return window.microfabLang ? window.microfabLang() : "en"; }
  function word(name) { return log.dataset[name + (lang() === "zh" ? "Zh" : "En")] || ""; }
  function placeholder() { input.placeholder = input.dataset[lang() === "zh" ? "placeholderZh" : "placeholderEn"] || ""; }
  document.addEventListener("microfab:lang", placeholder);
  placeholder();

  function add(kind, text) {
    var item = document.createElement("div");
    item.className = "ask-" + kind;
    item.textContent = text;
    log.appendChild(item);
    return item;
  }

  function show(answer) {
    var item = add(answer.tool ? "answer" : "declined", answer.answer);
    if (answer.tool) {
      var args = Object.keys(answer.arguments).map(function (k) { return k + "=" + answer.arguments[k]; });
      var source = document.createElement("div");
      source.className = "ask-source";
      var period = answer.period.from || answer.period.to ?
        " · " + (answer.period.from || "…") + " – " + (answer.period.to || "…") : "";
      source.textContent = word("source") + ": " + answer.tool + (args.length ? " (" + args.join(", ") + ")" : "") + period + " ";
      if (answer.link) {
        var link = document.createElement("a");
        link.href = answer.link;
        link.textContent = word("view");
        source.appendChild(link);
      }
      item.appendChild(source);
    }
    log.scrollTop = log.scrollHeight;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question) { return; }
    add("question", question);
    input.value = "";
    fetch("/api/v1/ask", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": token },
      body: JSON.stringify({ question: question })
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(show).catch(function () { add("declined", word("failed")); });
  });
})();
