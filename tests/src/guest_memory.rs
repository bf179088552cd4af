//! Guest memory a test can read after the plugin ran: wasmtime allocates the plugin's
//! linear memories through this creator, which keeps a handle on each, so that a test
//! can scan everything the guest ever held for a secret.

use std::sync::{Arc, Mutex};
use wasmtime::{Config, LinearMemory, MemoryCreator, MemoryType};

type Bytes = Arc<Mutex<Vec<u8>>>;

/// Records every linear memory it creates.
#[derive(Clone, Default)]
pub struct RecordingMemories {
    memories: Arc<Mutex<Vec<Bytes>>>,
}

impl RecordingMemories {
    /// Sets up `config` to allocate guest memory here. Plain heap memory has no guard
    /// pages, so the engine is told to bounds-check instead of relying on them.
    pub fn install(&self, config: &mut Config) {
        config.with_host_memory(Arc::new(self.clone()));
        config.memory_reservation(0);
        config.memory_guard_size(0);
        config.memory_reservation_for_growth(0);
        config.signals_based_traps(false);
        // Copy-on-write images need mmap-backed memories; heap memory is initialised by copy.
        config.memory_init_cow(false);
    }

    /// Whether any memory the guest had holds `needle`.
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.memories
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.lock().unwrap().windows(needle.len()).any(|w| w == needle))
    }

    pub fn count(&self) -> usize {
        self.memories.lock().unwrap().len()
    }
}

struct HeapMemory {
    bytes: Bytes,
}

// SAFETY: the memory is a zero-filled heap buffer that only wasmtime resizes, through
// `grow_to`; `as_ptr` stays valid until then, which is what wasmtime expects when the
// memory may move (no reservation was asked for).
unsafe impl LinearMemory for HeapMemory {
    fn byte_size(&self) -> usize {
        self.bytes.lock().unwrap().len()
    }

    fn byte_capacity(&self) -> usize {
        self.bytes.lock().unwrap().capacity()
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        self.bytes.lock().unwrap().resize(new_size, 0);
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.bytes.lock().unwrap().as_mut_ptr()
    }
}

// SAFETY: see `HeapMemory`; reservations and guard pages are refused, so wasmtime emits
// bounds checks for every access.
unsafe impl MemoryCreator for RecordingMemories {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if reserved_size_in_bytes.unwrap_or(0) > 0 || guard_size_in_bytes > 0 {
            return Err(format!(
                "RecordingMemories needs an engine without reservations or guards (got {reserved_size_in_bytes:?}, {guard_size_in_bytes})"
            ));
        }
        let bytes = Arc::new(Mutex::new(vec![0u8; minimum]));
        self.memories.lock().unwrap().push(bytes.clone());
        Ok(Box::new(HeapMemory { bytes }))
    }
}
