// Highlight the cited passage named in the address (#chunk-id).
(function () {
  let id = "";
  try {
    id = decodeURIComponent(location.hash.slice(1));
  } catch (error) {
    return; // a malformed address: nothing to highlight
  }
  const target = id && document.getElementById(id);
  if (target) {
    target.classList.add("cited");
    target.scrollIntoView();
  }
})();
