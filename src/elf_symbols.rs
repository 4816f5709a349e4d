//! A loaded object's dynamic symbols, looked up by name through its GNU
//! hash table (`DT_GNU_HASH`), as the dynamic linker looks them up.
//!
//! `hotpatch.rs` needs the symbol-table entry (size and type) of each of
//! the executable's 118 allocator entry points. `dladdr1` finds an entry
//! by address with a scan of the object's whole symbol table, and in
//! Debian's `php8.2` (3,034 dynamic symbols) the two such scans per entry
//! point took 19.0M of the 41.7M instructions that `php8.2 -n -r ';'`
//! executes with zendmm preloaded (callgrind); without the patching it
//! executes 21.9M. A hash lookup reads a bucket and a short chain.
//!
//! Objects without a GNU hash table get `None` from [`Symbols::of`]; the
//! caller then falls back to `dladdr1`.

// Only the Linux/x86-64/glibc hot-patcher (and the tests) use it.
#![cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")),
    allow(dead_code)
)]

use core::ffi::{c_char, c_void, CStr};

const DT_NULL: i64 = 0;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
/// `st_shndx` of a symbol the object uses but does not define.
const SHN_UNDEF: u16 = 0;

/// An ELF64 symbol-table entry (`Elf64_Sym`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sym {
    pub st_name: u32,
    pub st_info: u8,
    pub st_other: u8,
    pub st_shndx: u16,
    pub st_value: u64,
    pub st_size: u64,
}

/// An entry of an object's dynamic section (`Elf64_Dyn`).
#[repr(C)]
struct Dyn {
    d_tag: i64,
    d_val: u64,
}

/// The public head of glibc's `struct link_map` (`<link.h>`).
#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *const Dyn,
}

/// The GNU hash of a symbol name.
pub(crate) fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

/// A loaded object's dynamic symbol table, string table and GNU hash table.
pub(crate) struct Symbols {
    /// The object's load bias (`l_addr`): added to a symbol's value, it
    /// gives the symbol's address.
    pub base: usize,
    symtab: *const Sym,
    strtab: *const c_char,
    hash: *const u32,
}

impl Symbols {
    /// The tables of the object whose `link_map` is `map` (from `dlinfo`
    /// or `dladdr1`); None when it has no GNU hash table.
    ///
    /// # Safety
    /// `map` is the link map of an object that stays loaded while the
    /// result is used.
    pub(crate) unsafe fn of(map: *const c_void) -> Option<Symbols> {
        // SAFETY: caller's contract; the loader's link map starts with the
        // public fields, and the dynamic section ends with DT_NULL.
        unsafe {
            let map = &*map.cast::<LinkMap>();
            let base = map.l_addr;
            let (mut symtab, mut strtab, mut hash) = (0, 0, 0);
            let mut d = map.l_ld;
            while !d.is_null() && (*d).d_tag != DT_NULL {
                let v = (*d).d_val as usize;
                match (*d).d_tag {
                    DT_SYMTAB => symtab = v,
                    DT_STRTAB => strtab = v,
                    DT_GNU_HASH => hash = v,
                    _ => {}
                }
                d = d.add(1);
            }
            if symtab == 0 || strtab == 0 || hash == 0 {
                return None;
            }
            // glibc adds the load bias to these entries in place when it
            // loads an object whose dynamic section is writable (x86-64's
            // is); a value below the bias has not been relocated.
            let at = |v: usize| if v < base { v + base } else { v };
            Some(Symbols {
                base,
                symtab: at(symtab) as *const Sym,
                strtab: at(strtab) as *const c_char,
                hash: at(hash) as *const u32,
            })
        }
    }

    /// The entry of the symbol `name` the object defines, if it does.
    ///
    /// The hash table is a header (bucket count, index of the first
    /// hashed symbol, bloom size in 64-bit words, bloom shift), the bloom
    /// words, the buckets, then one chain word per hashed symbol: its
    /// hash with bit 0 set on the last of each bucket's chain.
    pub(crate) fn lookup(&self, name: &CStr) -> Option<Sym> {
        let h = gnu_hash(name.to_bytes());
        // SAFETY: the tables are a loaded object's (`of`'s contract) or a test's own.
        unsafe {
            let (nbuckets, symoffset, bloom) = (*self.hash, *self.hash.add(1), *self.hash.add(2));
            if nbuckets == 0 {
                return None;
            }
            let buckets = self.hash.add(4 + 2 * bloom as usize);
            let chain = buckets.add(nbuckets as usize);
            let mut i = *buckets.add((h % nbuckets) as usize);
            if i < symoffset {
                return None;
            }
            loop {
                let link = *chain.add((i - symoffset) as usize);
                if link | 1 == h | 1 {
                    let sym = *self.symtab.add(i as usize);
                    let sym_name = CStr::from_ptr(self.strtab.add(sym.st_name as usize));
                    if sym_name == name && sym.st_shndx != SHN_UNDEF {
                        return Some(sym);
                    }
                }
                if link & 1 != 0 {
                    return None;
                }
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_linkers() {
        // Values from the GNU hash's definition (h = h * 33 + c from 5381).
        assert_eq!(gnu_hash(b""), 0x0000_1505);
        assert_eq!(gnu_hash(b"printf"), 0x156b_2bb8);
        assert_eq!(gnu_hash(b"exit"), 0x7c96_7e3f);
        assert_eq!(gnu_hash(b"syscall"), 0xbac2_12a0);
    }

    /// A table of `names` built as a linker builds it: symbols sorted by
    /// bucket after `symoffset` undefined ones.
    struct Built {
        syms: Vec<Sym>,
        strtab: Vec<u8>,
        hash: Vec<u32>,
    }

    fn build(names: &[&str], undefined: &[&str], nbuckets: u32) -> Built {
        let mut strtab = vec![0u8];
        let mut sym_of = |name: &str, shndx: u16, value: u64| {
            let st_name = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            Sym {
                st_name,
                st_info: 0x12,
                st_other: 0,
                st_shndx: shndx,
                st_value: value,
                st_size: name.len() as u64,
            }
        };
        let mut syms = vec![sym_of("", 0, 0)];
        for n in undefined {
            syms.push(sym_of(n, SHN_UNDEF, 0));
        }
        let symoffset = syms.len() as u32;
        let mut defined: Vec<(u32, &str)> =
            names.iter().map(|n| (gnu_hash(n.as_bytes()), *n)).collect();
        defined.sort_by_key(|&(h, _)| h % nbuckets);
        let mut buckets = vec![0u32; nbuckets as usize];
        let mut chain = Vec::new();
        for (k, &(h, n)) in defined.iter().enumerate() {
            let index = symoffset + k as u32;
            syms.push(sym_of(n, 1, 0x1000 + 16 * u64::from(index)));
            let b = (h % nbuckets) as usize;
            if buckets[b] == 0 {
                buckets[b] = index;
            }
            let last = defined
                .get(k + 1)
                .is_none_or(|&(h2, _)| h2 % nbuckets != b as u32);
            chain.push(if last { h | 1 } else { h & !1 });
        }
        // One bloom word (two u32s), which the lookup does not consult.
        let mut hash = vec![nbuckets, symoffset, 1, 6, u32::MAX, u32::MAX];
        hash.extend(buckets);
        hash.extend(chain);
        Built { syms, strtab, hash }
    }

    fn symbols(b: &Built) -> Symbols {
        Symbols {
            base: 0,
            symtab: b.syms.as_ptr(),
            strtab: b.strtab.as_ptr().cast(),
            hash: b.hash.as_ptr(),
        }
    }

    #[test]
    fn finds_every_defined_name_and_nothing_else() {
        let names = [
            "_emalloc",
            "_efree",
            "_erealloc",
            "zend_mm_startup",
            "_emalloc_56",
            "a",
            "b",
        ];
        for nbuckets in [1, 2, 3, 7] {
            let built = build(&names, &["malloc", "free"], nbuckets);
            let table = symbols(&built);
            for (i, n) in names.iter().enumerate() {
                let c = std::ffi::CString::new(*n).unwrap();
                let sym = table
                    .lookup(&c)
                    .unwrap_or_else(|| panic!("{n} with {nbuckets} buckets"));
                assert_eq!(sym.st_size, n.len() as u64, "{n}: {i}");
            }
            for absent in [c"malloc", c"free", c"_emalloc_64", c"", c"_efre"] {
                assert_eq!(table.lookup(absent), None, "{absent:?}");
            }
        }
    }

    #[test]
    fn an_empty_table_finds_nothing() {
        let built = build(&[], &["malloc"], 1);
        assert_eq!(symbols(&built).lookup(c"malloc"), None);
    }
}
