// Stores a value only where it would change something.
//
// A forked child resets the accounts it inherited (latency histograms, the timeline). Writing
// every word would copy every page of them from the parent (copy-on-write), although most were
// never used and are already clear; reading first leaves those pages shared.
#pragma once

#include <atomic>

namespace uffdlazy {

template <class T, class V>
inline void store_changed(std::atomic<T>& c, V v) {
  if (c.load(std::memory_order_relaxed) != T(v)) c.store(T(v), std::memory_order_relaxed);
}

template <class T, class V>
inline void store_changed(T& c, V v) {
  if (c != T(v)) c = T(v);
}

}  // namespace uffdlazy
