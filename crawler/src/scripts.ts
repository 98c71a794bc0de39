/**
 * Lua scripts: each runs atomically in Redis, which is what makes the crawl exact under redelivery.
 * Times come from Redis' own clock (TIME) so that workers with skewed clocks agree.
 */
const NOW = `local __t = redis.call('TIME') local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)`;

/**
 * KEYS: job, seen, tasks. ARGV: id, maxDepth, maxPages, scope, seedsJson, ttlSeconds, url...
 * Creates the job hash and enqueues the seeds; returns the number of seeds queued (-1 if the id exists).
 */
export const CREATE_JOB = `${NOW}
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local maxPages = tonumber(ARGV[3])
local n = 0
for i = 7, #ARGV do
  if n < maxPages and redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    n = n + 1
    redis.call('XADD', KEYS[3], '*', 'j', ARGV[1], 'u', ARGV[i], 'd', '0', 'a', '1')
  end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', 'running', 'createdAt', now, 'updatedAt', now,
  'maxDepth', ARGV[2], 'maxPages', ARGV[3], 'scope', ARGV[4], 'seeds', ARGV[5],
  'queued', n, 'pending', n, 'fetched', 0, 'failed', 0, 'robots', 0, 'blocked', 0, 'cancelled', 0, 'images', 0, 'ttl', ARGV[6])
return n`;

/**
 * The one step that records a page's result. KEYS: job, seen, done, pages, imageSet, images, tasks, takeovers.
 * ARGV: group, messageId, jobId, url, outcome (a count field), pageJson, imagePage,
 *       nImages, (imageUrl, alt) x nImages, nChildren, (url, depth, robotsDisallowed 0|1) x nChildren.
 * Image records are built here from (url, page, alt): sending each URL once keeps the command small.
 * Marking the URL done, counting it, storing new images, admitting children (dedupe + max pages + pending)
 * and acknowledging the message happen together, so a crash anywhere leaves either nothing or everything;
 * a redelivered message finds its URL in "done" and is only acknowledged.
 * Returns 1 when recorded, 0 for a duplicate, -1 when the job no longer exists.
 */
export const COMPLETE_PAGE = `${NOW}
local function ack()
  if ARGV[2] ~= '' then
    redis.call('XACK', KEYS[7], ARGV[1], ARGV[2])
    redis.call('XDEL', KEYS[7], ARGV[2])
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then ack() return -1 end
if redis.call('SADD', KEYS[3], ARGV[4]) == 0 then ack() return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('HINCRBY', KEYS[1], ARGV[5], 1)
if ARGV[6] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[6]) end
local i = 8
local nImages = tonumber(ARGV[i])
i = i + 1
local newImages = 0
for _ = 1, nImages do
  if redis.call('SADD', KEYS[5], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[6], cjson.encode({ url = ARGV[i], page = ARGV[7], alt = ARGV[i + 1] }))
    newImages = newImages + 1
  end
  i = i + 2
end
if newImages > 0 then redis.call('HINCRBY', KEYS[1], 'images', newImages) end
local nChildren = tonumber(ARGV[i])
i = i + 1
if status == 'running' and nChildren > 0 then
  local maxPages = tonumber(redis.call('HGET', KEYS[1], 'maxPages'))
  local queued = tonumber(redis.call('HGET', KEYS[1], 'queued'))
  local added = 0
  for _ = 1, nChildren do
    local u, d, disallowed = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    if redis.call('SISMEMBER', KEYS[2], u) == 0 then
      if disallowed == '1' then
        redis.call('SADD', KEYS[2], u)
        redis.call('HINCRBY', KEYS[1], 'robots', 1)
      elseif queued < maxPages then
        redis.call('SADD', KEYS[2], u)
        queued = queued + 1
        added = added + 1
        redis.call('XADD', KEYS[7], '*', 'j', ARGV[3], 'u', u, 'd', d, 'a', '1')
      end
    end
  end
  if added > 0 then
    redis.call('HSET', KEYS[1], 'queued', queued)
    redis.call('HINCRBY', KEYS[1], 'pending', added)
  end
end
local pending = redis.call('HINCRBY', KEYS[1], 'pending', -1)
redis.call('HSET', KEYS[1], 'updatedAt', now)
if pending <= 0 and status == 'running' then redis.call('HSET', KEYS[1], 'status', 'done', 'finishedAt', now) end
if pending <= 0 then
  -- Nothing of this job is in flight any more: its data is kept for the job's retention time, then dropped.
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
  if ttl and ttl > 0 then
    for k = 1, 6 do redis.call('EXPIRE', KEYS[k], ttl) end
    redis.call('EXPIRE', KEYS[8], ttl)
  end
end
ack()
return 1`;

/**
 * Puts a task aside until later (retry backoff, or a host's politeness slot) and acknowledges its message.
 * KEYS: tasks, delayed. ARGV: group, messageId, delayMs, taskJson.
 */
export const DELAY_TASK = `${NOW}
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
return 1`;

/** Moves due delayed tasks onto the stream. KEYS: delayed, tasks. ARGV: limit. Returns how many moved. */
export const PROMOTE_DUE = `${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local t = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'j', t.j, 'u', t.u, 'd', tostring(t.d), 'a', tostring(t.a))
  redis.call('ZREM', KEYS[1], member)
end
return #due`;

/**
 * Hands a held message back to the queue (graceful shutdown): a fresh copy for any worker, then ack.
 * KEYS: tasks. ARGV: group, messageId, jobId, url, depth, attempt.
 */
export const RELEASE_TASK = `
redis.call('XADD', KEYS[1], '*', 'j', ARGV[3], 'u', ARGV[4], 'd', ARGV[5], 'a', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1`;

/**
 * Per-host politeness shared by all workers: hands out request slots at least intervalMs apart.
 * KEYS: host. ARGV: intervalMs, maxWaitMs. Returns {reserved 0|1, waitMs}; nothing is reserved when the
 * wait would exceed maxWaitMs (the caller delays the task instead of holding a slot it cannot use).
 */
export const HOST_SLOT = `${NOW}
local interval = tonumber(ARGV[1])
local nextFree = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nextFree)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return {0, wait} end
redis.call('SET', KEYS[1], slot + interval, 'PX', wait + interval + 60000)
return {1, wait}`;

/** Cancels a running job. KEYS: job. Returns the previous status, or false when there is no such job. */
export const CANCEL_JOB = `${NOW}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'running' then redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updatedAt', now, 'finishedAt', now) end
return status`;
