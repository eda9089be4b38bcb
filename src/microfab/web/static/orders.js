/* Order form: show only the chosen product's variant options (the others are disabled, so they
   are not sent). Without this script every product's options show and only the chosen one's count. */
(function () {
  "use strict";
  var product = document.getElementById("order-product");
  if (!product) { return; }
  function show() {
    document.querySelectorAll("fieldset.options[data-product]").forEach(function (set) {
      var mine = set.dataset.product === product.value;
      set.hidden = !mine;
      set.disabled = !mine;
    });
  }
  product.addEventListener("change", show);
  show();
})();
