-- Each request a distinct alert group for an unknown service (each starts a run that escalates).
-- The webhook token is WRK_TOKEN from the environment (default: hook).
-- Copied from the shared peer's script, with one fix: each wrk thread has its own Lua state, and
-- the peer's tag (os.time() and an unseeded math.random) was the same in every thread, so with
-- -t2 half the requests repeated the other thread's alerts (deduplicated, not distinct). The tag
-- now carries the thread's number, set in setup().
local counter = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
local token = os.getenv("WRK_TOKEN") or "hook"
local tag
request = function()
  if tag == nil then tag = tostring(os.time()) .. "-" .. tostring(thread_id or 0) end
  counter = counter + 1
  local svc = "wrk-" .. tag .. "-" .. counter
  local body = '{"version":"4","groupKey":"{}:{service=\\"' .. svc .. '\\"}","truncatedAlerts":0,"status":"firing","receiver":"agent",'
    .. '"groupLabels":{"service":"' .. svc .. '"},"commonLabels":{"alertname":"ServiceDown","service":"' .. svc .. '"},'
    .. '"commonAnnotations":{},"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"ServiceDown","service":"' .. svc .. '","severity":"critical"},'
    .. '"annotations":{"summary":"down"},"startsAt":"2026-12-01T08:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://p","fingerprint":"' .. tag .. "-" .. counter .. '"}]}'
  return wrk.format("POST", "/webhook/alerts", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. token}, body)
end
