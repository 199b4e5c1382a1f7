// Conversations kept in this browser's localStorage: an index of {id, title, updated}, newest first, and
// one key per conversation, so saving a turn rewrites one conversation, not all of them.

const INDEX = "solarstream.conversations";
const PREFIX = "solarstream.conversation.";
const CURRENT = "solarstream.current";
const TITLE_LENGTH = 60;

function read(key, fallback) {
  try {
    const value = JSON.parse(localStorage.getItem(key));
    return value === null ? fallback : value;
  } catch (_) {
    return fallback; // unreadable: treated as missing
  }
}

function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export function titleOf(conversation) {
  const first = conversation.messages.find((m) => m.role === "user");
  const line = first ? first.content.replace(/\s+/g, " ").trim() : "";
  if (!line) return "New conversation";
  return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1)}…` : line;
}

export function fresh() {
  const now = Date.now();
  return { id: newId(), created: now, updated: now, messages: [] };
}

/** The saved conversations, newest first: [{id, title, updated}]. */
export function list() {
  const index = read(INDEX, []);
  return Array.isArray(index) ? index.filter((e) => e && typeof e.id === "string") : [];
}

export function load(id) {
  const conversation = read(PREFIX + id, null);
  if (!conversation || !Array.isArray(conversation.messages)) return null;
  for (const m of conversation.messages) {
    if (m.status === "streaming") m.status = "stopped"; // the page was closed mid-answer
  }
  return conversation;
}

/** Save a conversation and move it to the top of the list. Throws when the browser's storage is full. */
export function save(conversation) {
  if (conversation.deleted || !conversation.messages.length) return;
  conversation.updated = Date.now();
  const title = titleOf(conversation);
  localStorage.setItem(PREFIX + conversation.id, JSON.stringify(conversation));
  const index = list().filter((e) => e.id !== conversation.id);
  index.unshift({ id: conversation.id, title, updated: conversation.updated });
  localStorage.setItem(INDEX, JSON.stringify(index));
}

export function remove(conversation) {
  conversation.deleted = true;
  localStorage.removeItem(PREFIX + conversation.id);
  localStorage.setItem(INDEX, JSON.stringify(list().filter((e) => e.id !== conversation.id)));
}

export const current = {
  get: () => localStorage.getItem(CURRENT),
  set(id) { if (id) localStorage.setItem(CURRENT, id); else localStorage.removeItem(CURRENT); },
};

/** Did this storage event change the list (another tab saved or deleted a conversation)? */
export function touchesList(event) {
  return event.key === null || event.key === INDEX;
}
