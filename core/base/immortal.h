// Static storage for an object that is constructed on demand and never destroyed.
//
// Declare instances constinit: a dynamic initialiser could run after the shim's constructor
// and wipe an object it already built.
//
// The shim's long-lived objects (snapshot reader, matcher, call-site table) have destructors that
// unmap memory. As ordinary globals those would run at exit while the monitor and other threads
// may still use them; here they simply live until the process is gone.
#pragma once

#include <new>

namespace uffdlazy {

template <class T>
class Immortal {
 public:
  T* construct() { return ptr_ = new (storage_) T(); }
  T* get() const { return ptr_; }
  T* operator->() const { return ptr_; }
  T& operator*() const { return *ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }

 private:
  alignas(T) unsigned char storage_[sizeof(T)] = {};
  T* ptr_ = nullptr;
};

}  // namespace uffdlazy
