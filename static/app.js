// dropops' one script of its own (the rest is htmx). A form sent back with its errors names
// its own page (see forget_rejected_posts in src/web/layers.rs): replace the POST history
// entry with that page, so Back or a reload never asks to resend the form.
(function () {
  var page = document.querySelector('meta[name="dropops-get-url"]');
  if (page && window.history && window.history.replaceState) {
    window.history.replaceState(null, '', page.getAttribute('content'));
  }
})();
