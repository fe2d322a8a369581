"""Rate-limit counters shared by every node through Redis.

Same fixed-window semantics as ``MemoryRateLimiter`` (PocketBase's) and the PostgreSQL limiter:
a key gets ``max_requests`` tokens, refilled once ``duration`` seconds have passed since the last
successful consume. Each window is one Redis hash (``available``, ``last``, ``max``) read and
updated by one Lua script, so the check-and-take is atomic across nodes. Time is Redis's own
clock (``TIME``), so nodes with skewed clocks still agree. A key expires ``duration`` seconds after
its last successful consume: by then it would be refilled anyway, so idle keys cost nothing.

Keys live under ``<namespace>:limits:``. An unreachable Redis is an error (the request fails),
never a silently disabled limit: the brute-force and OTP limits depend on it.
"""

from __future__ import annotations

import redis
import redis.retry
from redis.backoff import NoBackoff

_CONSUME = """
local max = tonumber(ARGV[1])
local duration = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
local w = redis.call('HMGET', KEYS[1], 'available', 'last')
local available = tonumber(w[1]) or 0
local last = tonumber(w[2]) or 0
if now - last >= duration then
  available = max
end
if available > 0 then
  redis.call('HSET', KEYS[1], 'available', available - 1, 'last', now, 'max', max)
  redis.call('EXPIRE', KEYS[1], math.max(duration, 1))
  return 0
end
return math.max(1, duration - (now - last))
"""

_RELEASE = """
local w = redis.call('HMGET', KEYS[1], 'available', 'max')
if w[1] and w[2] and tonumber(w[1]) < tonumber(w[2]) then
  redis.call('HINCRBY', KEYS[1], 'available', 1)
end
return 0
"""

_TIMEOUT = 5.0


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisRateLimiter:
    def __init__(self, url: str, namespace: str) -> None:
        # one retry: replaces a pooled connection that Redis closed (restart, idle timeout)
        self.client = redis.Redis.from_url(url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT,
                                           socket_keepalive=True, retry=redis.retry.Retry(NoBackoff(), 1))
        self.prefix = f"{namespace}:limits:"
        self._consume = self.client.register_script(_CONSUME)
        self._release = self.client.register_script(_RELEASE)

    def consume(self, key: str, max_requests: int, duration: int) -> int:
        return int(self._consume(keys=[self.prefix + key], args=[max_requests, duration]))

    def release(self, key: str) -> None:
        self._release(keys=[self.prefix + key])

    def reset(self, prefix: str = "") -> None:
        pattern = self.prefix + _glob_escape(prefix) + "*"
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.client.unlink(*batch)
                batch.clear()
        if batch:
            self.client.unlink(*batch)

    def close(self) -> None:
        self.client.close()
