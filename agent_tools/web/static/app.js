// videogen dashboard: live job cards and hover previews. No framework, no build, no CDN.
"use strict";

const POLL_MS = 2000;

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

async function fetchCard(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/x-fragment" } });
  if (response.status === 401) { window.location.reload(); return null; }  // signed out: the page redirects
  if (!response.ok) return null;
  return fragment(await response.text());
}

// A card of a running job asks for its fresh self every two seconds and swaps in place until it is done.
async function pollCards() {
  for (const card of document.querySelectorAll("article[data-poll]")) {
    try {
      const fresh = await fetchCard(card.dataset.poll);
      if (fresh && fresh.outerHTML !== card.outerHTML) {
        card.replaceWith(fresh);
        wirePreviews(fresh);
      }
    } catch (error) { /* the next round retries */ }
  }
  if (document.querySelector("article[data-poll]")) setTimeout(pollCards, POLL_MS);
}

// The job page reloads itself once its job has finished, to show the player and the final cost.
async function pollJobPage(section) {
  try {
    const fresh = await fetchCard(section.dataset.reloadWhenDone);
    if (fresh && !fresh.hasAttribute("data-poll")) { window.location.reload(); return; }
  } catch (error) { /* retry */ }
  setTimeout(() => pollJobPage(section), POLL_MS);
}

// Gallery videos are muted previews: they play while hovered or focused.
function wirePreviews(root) {
  for (const video of root.querySelectorAll("video[data-preview]")) {
    const holder = video.closest("a") || video;
    const play = () => { video.play().catch(() => {}); };
    const stop = () => { video.pause(); };
    holder.addEventListener("mouseenter", play);
    holder.addEventListener("focus", play);
    holder.addEventListener("mouseleave", stop);
    holder.addEventListener("blur", stop);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  wirePreviews(document);
  if (document.querySelector("article[data-poll]")) setTimeout(pollCards, POLL_MS);
  const section = document.querySelector("[data-reload-when-done]");
  if (section) setTimeout(() => pollJobPage(section), POLL_MS);
});
