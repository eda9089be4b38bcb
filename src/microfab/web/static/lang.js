/* English / 中文 toggle: both are in the page; this shows one and remembers the choice. */
(function () {
  var root = document.documentElement;
  function apply(lang) {
    root.dataset.lang = lang;
    root.lang = lang === "zh" ? "zh-Hant-HK" : "en";
    try { localStorage.setItem("microfab-lang", lang); } catch (e) {}
    document.dispatchEvent(new CustomEvent("microfab:lang", { detail: lang }));
  }
  var button = document.getElementById("lang-toggle");
  if (button) {
    button.addEventListener("click", function () { apply(root.dataset.lang === "zh" ? "en" : "zh"); });
  }
  window.microfabLang = function () { return root.dataset.lang === "zh" ? "zh" : "en"; };
})();
