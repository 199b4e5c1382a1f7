// solarstream chat page: talks only to this gateway's own API. Conversations live in localStorage;
// model output is rendered by markdown.js (marked + highlight.js, sanitised by DOMPurify).

import { describe, gatewayKey, listModels, streamChat, upstreamLabel } from "./api.js";
import * as store from "./store.js";
import { conversationList, messageView, paintAnswer } from "./view.js";

const SYSTEM_STORAGE = "solarstream.system";
const MODEL_STORAGE = "solarstream.model";
const $ = (id) => document.getElementById(id);
const el = {
  model: $("model"), system: $("system"), key: $("key"), keySave: $("key-save"),
  settings: $("settings"), settingsToggle: $("settings-toggle"), messages: $("messages"), empty: $("empty"),
  error: $("error"), form: $("composer"), prompt: $("prompt"), send: $("send"), stop: $("stop"),
  newChat: $("new"), upstream: $("upstream"), sidebar: $("sidebar"), chatsToggle: $("chats-toggle"),
  conversations: $("conversations"), noConversations: $("no-conversations"),
};

/** The conversation on screen: {id, created, updated, messages: [{role, content, ...}]}. */
let conversation = store.fresh();
/** The turn being streamed, if any: {controller, conversation}. */
let running = null;

// ---------- errors outside a turn (models, storage) ----------

function showError(err) {
  const info = describe(err);
  el.error.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = info.status ? `Error ${info.status}: ` : "Error: ";
  const message = document.createElement("span");
  message.className = "error-message";
  message.textContent = info.message;
  const what = document.createElement("p");
  what.className = "error-advice";
  what.textContent = info.advice;
  el.error.append(title, message, what);
  el.error.hidden = false;
  if (info.status === 401) openSettings(true);
}

function clearError() { el.error.hidden = true; el.error.replaceChildren(); }

function persist(target) {
  try {
    store.save(target);
    if (target === conversation && !target.deleted) store.current.set(target.id);
  } catch (_) {
    showError(new Error("this browser's storage for the page is full: delete old conversations"));
  }
  renderList();
}

// ---------- rendering ----------

function renderList() {
  const entries = store.list();
  el.conversations.replaceChildren(...conversationList(entries, conversation.id, { open, remove }));
  el.noConversations.hidden = entries.length > 0;
}

function render() {
  // re-rendering the same conversation keeps the reasoning blocks the reader opened
  const same = el.messages.dataset.conversation === conversation.id;
  const opened = new Set(same ? [...el.messages.querySelectorAll("article")]
    .filter((a) => a.querySelector("details.reasoning[open]")).map((a) => a.dataset.index) : []);
  el.messages.dataset.conversation = conversation.id;
  const messages = conversation.messages;
  const views = messages.map((message, index) => {
    const last = index === messages.length - 1;
    const article = messageView(message, {
      last, running: !!running, unanswered: last && message.role === "user",
    }, {
      regenerate: () => regenerate(index),
      resend: (text) => resend(index, text),
      rerender: render,
    });
    article.dataset.index = String(index);
    if (opened.has(article.dataset.index)) article.querySelector("details.reasoning").open = true;
    return article;
  });
  el.empty.hidden = messages.length > 0;
  el.messages.replaceChildren(el.empty, ...views);
  const lastView = views[views.length - 1];
  if (lastView) lastView.scrollIntoView({ block: "end" });
}

// ---------- a turn ----------

/** What is sent: answered turns only (a failed or empty answer and its question are left out), then the question. */
function requestMessages(messages) {
  const out = [];
  const system = el.system.value.trim();
  if (system) out.push({ role: "system", content: system });
  messages.forEach((message, i) => {
    if (message.role !== "user") return;
    const reply = messages[i + 1];
    if (i === messages.length - 1) out.push({ role: "user", content: message.content });
    else if (reply && reply.role === "assistant" && reply.status !== "failed" && reply.content) {
      out.push({ role: "user", content: message.content }, { role: "assistant", content: reply.content });
    }
  });
  return out;
}

function setRunning(turn) {
  running = turn;
  el.send.hidden = !!turn;
  el.stop.hidden = !turn;
}

/** Answer the conversation's last message (a user message). */
async function answer() {
  clearError();
  const target = conversation;
  const messages = requestMessages(target.messages);
  persist(target);
  const reply = { role: "assistant", content: "", model: el.model.value, status: "streaming" };
  target.messages.push(reply);
  const controller = new AbortController();
  setRunning({ controller, conversation: target });
  render();
  const view = el.messages.lastElementChild;
  let frame = 0;
  const paint = () => {
    frame = 0;
    paintAnswer(view, reply);
    view.scrollIntoView({ block: "end" });
  };
  const on = {
    delta(content, reasoning) {
      reply.content += content;
      if (reasoning) reply.reasoning = (reply.reasoning || "") + reasoning;
      if (!frame) frame = requestAnimationFrame(paint);
    },
    usage(usage) { reply.usage = usage; },
  };
  try {
    await streamChat({ model: reply.model, messages }, controller.signal, on);
    reply.status = "done";
  } catch (err) {
    if (err.name === "AbortError") {
      reply.status = "stopped";
    } else {
      reply.status = "failed";
      reply.error = describe(err);
      if (err.status === 401) openSettings(true);
    }
  } finally {
    if (frame) cancelAnimationFrame(frame);
    if (running && running.controller === controller) setRunning(null);
    persist(target);
    if (target === conversation) render();
  }
}

function ask(text) {
  conversation.messages.push({ role: "user", content: text });
  return answer();
}

/** Drop the answer at `index` (and everything after it) and ask again. */
function regenerate(index) {
  if (running) return;
  const messages = conversation.messages;
  messages.splice(messages[index].role === "assistant" ? index : index + 1);
  answer();
}

/** Replace the user message at `index` with `text`, drop what came after, and ask. */
function resend(index, text) {
  if (running) return;
  conversation.messages.splice(index, Infinity, { role: "user", content: text });
  answer();
}

// ---------- conversations ----------

function stopRunning() { if (running) running.controller.abort(); }

/** Leave the running turn to finish in the background: it is aborted and saves itself when it ends. */
function leaveRunning() {
  stopRunning();
  setRunning(null);
}

function show(next) {
  leaveRunning();
  conversation = next;
  store.current.set(next.messages.length ? next.id : null);
  clearError();
  render();
  renderList();
  closeSidebar();
}

function open(id) {
  const found = store.load(id);
  if (found) show(found);
  else renderList();
}

function remove(id) {
  const target = id === conversation.id ? conversation : store.load(id);
  if (target) {
    if (running && running.conversation.id === id) leaveRunning();
    store.remove(target);
  }
  if (id === conversation.id) show(store.fresh());
  else renderList();
}

// ---------- settings, models ----------

function openSettings(focusKey) {
  el.settings.hidden = false;
  el.settingsToggle.setAttribute("aria-expanded", "true");
  if (focusKey) el.key.focus();
}

function closeSidebar() {
  el.sidebar.classList.remove("open");
  el.chatsToggle.setAttribute("aria-expanded", "false");
}

async function loadModels() {
  try {
    const ids = await listModels();
    const saved = localStorage.getItem(MODEL_STORAGE);
    el.model.replaceChildren(...ids.map((id) => {
      const option = document.createElement("option");
      option.value = id;
      option.textContent = id;
      return option;
    }));
    if (saved && ids.includes(saved)) el.model.value = saved;
    el.model.dataset.loaded = "true";
    clearError();
  } catch (err) {
    showError(err);
  }
}

async function loadHealth() {
  if ((await upstreamLabel()) === "emulator") {
    el.upstream.textContent = "offline emulator — answers are not from a real model";
    el.upstream.hidden = false;
  }
}

// ---------- wiring ----------

el.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = el.prompt.value.trim();
  if (!text || running) return;
  el.prompt.value = "";
  ask(text);
});
el.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    el.form.requestSubmit();
  }
});
el.stop.addEventListener("click", stopRunning);
el.newChat.addEventListener("click", () => {
  show(store.fresh());
  el.prompt.focus();
});
el.chatsToggle.addEventListener("click", () => {
  const opening = !el.sidebar.classList.contains("open");
  el.sidebar.classList.toggle("open", opening);
  el.chatsToggle.setAttribute("aria-expanded", String(opening));
});
el.settingsToggle.addEventListener("click", () => {
  const opening = el.settings.hidden;
  el.settings.hidden = !opening;
  el.settingsToggle.setAttribute("aria-expanded", String(opening));
});
el.keySave.addEventListener("click", () => {
  const key = el.key.value.trim();
  gatewayKey.set(key);
  el.key.value = "";
  el.key.placeholder = key ? "saved (enter a new one to replace it)" : "the key the gateway was started with";
  loadModels();
});
el.model.addEventListener("change", () => localStorage.setItem(MODEL_STORAGE, el.model.value));
el.system.value = localStorage.getItem(SYSTEM_STORAGE) || "";
el.system.addEventListener("input", () => localStorage.setItem(SYSTEM_STORAGE, el.system.value));
if (gatewayKey.get()) el.key.placeholder = "saved (enter a new one to replace it)";
window.addEventListener("storage", (event) => { if (store.touchesList(event)) renderList(); });

const saved = store.current.get() && store.load(store.current.get());
if (saved) conversation = saved;
render();
renderList();
loadHealth();
loadModels();
