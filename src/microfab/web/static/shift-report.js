/* The shift report's screen bar: picking a shift opens it, Print prints (no inline script). */
(function () {
  var pick = document.getElementById("shift-pick");
  if (pick) {
    pick.addEventListener("change", function () {
      var v = pick.value.split("|");
      pick.form.day.value = v[0];
      pick.form.shift.value = v[1];
      pick.form.submit();
    });
  }
  var print = document.getElementById("print");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
})();
