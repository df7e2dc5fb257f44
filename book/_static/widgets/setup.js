// Loaded before require.js and embed-amd.js on pages with widgets (nb_ipywidgets_js in _config.yml).
// 1. embed-amd.js loads its Font Awesome fonts from the folder of its AMD module
//    "@jupyter-widgets/html-manager/dist/...": map that module path to this folder, where the
//    fonts are vendored (see SOURCE.txt). require.js reads a global `require` as its config.
(() => {
  const here = document.currentScript.src.replace(/\/[^/]*$/, "");
  window.require = { paths: { "@jupyter-widgets/html-manager/dist": here } };

  // 2. The widgets typeset their labels with MathJax 2's MathJax.Hub.Queue, but the site runs
  //    MathJax 3 (loaded with defer, so it exists by DOMContentLoaded): map the one call they use.
  document.addEventListener("DOMContentLoaded", () => {
    const mathjax = window.MathJax;
    if (mathjax && !mathjax.Hub) {
      mathjax.Hub = {
        Queue: (job) => mathjax.startup.promise.then(() => mathjax.typesetPromise([job[2]])),
      };
    }
  });
})();
