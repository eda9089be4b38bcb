/* The language choice, before the first paint (loaded in <head>: a file, not inline script,
   because the content security policy allows no inline script). lang.js does the rest. */
(function () {
  var lang = null;
  try { lang = localStorage.getItem("microfab-lang"); } catch (e) {}
  if (lang === "zh") { document.documentElement.dataset.lang = "zh"; document.documentElement.lang = "zh-Hant-HK"; }
})();
