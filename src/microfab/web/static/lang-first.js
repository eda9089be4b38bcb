/* The language choice, before the first paint (loaded in <head>, before the stylesheet applies). */
(function () {
  var lang = null;
  try { lang = localStorage.getItem("microfab-lang"); } catch (e) {}
  if (lang === "zh") { document.documentElement.dataset.lang = "zh"; document.documentElement.lang = "zh-Hant-HK"; }
})();
