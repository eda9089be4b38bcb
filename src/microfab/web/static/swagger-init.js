/* Starts the Swagger UI at /docs (a file, not inline script: the content security policy
   allows no inline script). Settings come from this tag's data-* attributes. */
(function () {
  var tag = document.currentScript;
  window.ui = SwaggerUIBundle({
    url: tag.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  });
})();
