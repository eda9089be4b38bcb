/* Keeps --header-h at the sticky header's height, so an anchor lands below it (dashboard.css). */
(function () {
  var header = document.querySelector("header.top");
  if (!header) { return; }
  function measure() {
    var sticky = getComputedStyle(header).position === "sticky";
    document.documentElement.style.setProperty("--header-h", (sticky ? header.offsetHeight : 0) + "px");
  }
  measure();
  window.addEventListener("resize", measure);
  if (window.ResizeObserver) { new ResizeObserver(measure).observe(header); }
  if (location.hash) {
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target) { target.scrollIntoView(); }
  }
})();
