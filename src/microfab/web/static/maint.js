/* Maintenance pages: a photo picked on a phone is shrunk in the browser (longest side 1280 px,
   JPEG) before it is sent, so that it stays under the request body limit. Without canvas support
   the file is sent as it is (the server refuses one that is too large, saying so). */
(function () {
  "use strict";
  var MAX_SIDE = 1280;
  var forms = document.querySelectorAll("form.maint-photo");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (ev) {
      var input = form.querySelector("input[type=file]");
      var file = input && input.files && input.files[0];
      if (!file || !window.createImageBitmap || !window.FormData || !window.fetch) { return; }
      ev.preventDefault();
      createImageBitmap(file).then(function (bitmap) {
        var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(bitmap.width * scale);
        canvas.height = Math.round(bitmap.height * scale);
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) {
          var data = new FormData(form);
          data.set("photo", blob, "photo.jpg");
          fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
            .then(function (answer) {
              if (answer.redirected) { window.location.href = answer.url; return; }
              answer.text().then(function (html) { document.open(); document.write(html); document.close(); });
            });
        }, "image/jpeg", 0.82);
      }).catch(function () { form.submit(); });
    });
  });
})();
