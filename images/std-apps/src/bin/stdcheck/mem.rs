//! Allocation and collections: many small allocations, a large one filled and checked, a
//! 1 GiB reservation that is never touched.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use astra_std_apps::checks::{ensure, CheckResult, Checks};

/// The large allocation that is filled and checked.
const LARGE: usize = 64 << 20;
/// The reservation that is never touched: far more than astra's default guest RAM.
const RESERVE: usize = 1 << 30;

/// Runs the memory checks.
pub fn run(checks: &mut Checks<impl std::io::Write>) {
    checks.run("collections", collections);
    checks.run("alloc_small_many", small_many);
    checks.run("alloc_64mib_filled", large);
    checks.run("alloc_1gib_reserved", reserve);
    checks.run("rusage_page_faults", page_faults);
}

/// `ru_minflt` of `getrusage(who)` (a raw call: std does not expose it).
fn min_flt(who: usize) -> Result<i64, String> {
    let mut usage = [0i64; 18];
    // SAFETY: getrusage fills the 144-byte struct rusage `usage` is.
    let r = unsafe { astra_std_apps::sys::syscall3(98, who, usage.as_mut_ptr() as usize, 0) };
    if r != 0 {
        return Err(format!("getrusage({who}) = {r}"));
    }
    // Two timevals, then ru_maxrss, ixrss, idrss, isrss, minflt.
    Ok(usage[8])
}

fn page_faults() -> CheckResult {
    const PAGES: usize = 256;
    let before = min_flt(0)?;
    let mut fresh = vec![0u8; PAGES * 4096];
    for page in 0..PAGES {
        fresh[page * 4096] = 1;
    }
    let touched = std::hint::black_box(&fresh)
        .iter()
        .filter(|&&b| b == 1)
        .count();
    let after = min_flt(0)?;
    let thread = min_flt(1)?;
    // Linux takes one fault per page; astra fills 64 KiB (or more) around each.
    ensure(
        touched == PAGES && after > before && after - before <= 4 * PAGES as i64,
        || format!("ru_minflt {before} -> {after} for {PAGES} fresh pages"),
    )?;
    ensure(thread > 0 && thread <= after, || {
        format!("RUSAGE_THREAD ru_minflt {thread}, process {after}")
    })?;
    Ok(format!("{} faults for {PAGES} fresh pages", after - before))
}

fn collections() -> CheckResult {
    let mut map = HashMap::new();
    for i in 0..10_000u32 {
        map.insert(format!("key{i}"), i * 3);
    }
    ensure(map.len() == 10_000, || {
        format!("HashMap has {} entries", map.len())
    })?;
    ensure(
        map.get("key1234") == Some(&3702) && !map.contains_key("key10000"),
        || "HashMap lookups".into(),
    )?;
    map.retain(|_, v| *v % 2 == 0);
    ensure(map.len() == 5_000, || {
        format!("HashMap::retain left {}", map.len())
    })?;

    let tree: BTreeMap<i32, &str> = [(3, "c"), (-1, "a"), (2, "b"), (10, "d")]
        .into_iter()
        .collect();
    let keys: Vec<i32> = tree.keys().copied().collect();
    ensure(keys == [-1, 2, 3, 10], || {
        format!("BTreeMap order {keys:?}")
    })?;
    let range: Vec<&str> = tree.range(0..=3).map(|(_, v)| *v).collect();
    ensure(range == ["b", "c"], || format!("BTreeMap::range {range:?}"))?;

    let mut text = String::from("grüße");
    text.push_str(", astra");
    ensure(text.len() == 14 && text.chars().count() == 12, || {
        format!("String lengths {} / {}", text.len(), text.chars().count())
    })?;
    ensure(text.to_uppercase() == "GRÜSSE, ASTRA", || {
        text.to_uppercase()
    })?;
    let words: Vec<&str> = "a  b c".split_whitespace().collect();
    ensure(words == ["a", "b", "c"], || {
        format!("split_whitespace {words:?}")
    })?;

    let mut v: Vec<u32> = (0..1000).map(|i| (i * 7919) % 1000).collect();
    v.sort_unstable();
    v.dedup();
    ensure(v.len() == 1000 && v.binary_search(&999) == Ok(999), || {
        format!("Vec sort/dedup left {}", v.len())
    })?;
    let set: HashSet<u32> = v.iter().map(|x| x % 10).collect();
    ensure(set.len() == 10, || format!("HashSet has {}", set.len()))?;
    let mut queue: VecDeque<u32> = (0..5).collect();
    queue.rotate_left(2);
    queue.push_front(9);
    ensure(queue == [9, 2, 3, 4, 0, 1], || {
        format!("VecDeque {queue:?}")
    })?;
    Ok(String::new())
}

fn small_many() -> CheckResult {
    let mut boxes: Vec<Box<[u64]>> = Vec::new();
    for i in 0..100_000u64 {
        let len = (i % 17 + 1) as usize;
        boxes.push(vec![i; len].into_boxed_slice());
        if i % 3 == 0 {
            // Free some as we go, so the allocator reuses memory.
            boxes.swap_remove((i as usize * 7) % boxes.len());
        }
    }
    for b in &boxes {
        let first = b[0];
        ensure(
            b.iter().all(|&x| x == first) && b.len() as u64 == first % 17 + 1,
            || format!("a box of {first} was corrupted"),
        )?;
    }
    Ok(format!("{} live", boxes.len()))
}

fn large() -> CheckResult {
    let mut buf = vec![0u8; LARGE];
    ensure(buf.iter().step_by(4096).all(|&b| b == 0), || {
        "fresh memory is not zero".into()
    })?;
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let bad = buf
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8);
    ensure(bad.is_none(), || format!("byte {bad:?} reads back wrong"))?;
    Ok(format!("{} MiB", LARGE >> 20))
}

fn reserve() -> CheckResult {
    let mut v: Vec<u8> = Vec::new();
    // `try_reserve_exact` is `Vec::with_capacity` that reports failure instead of aborting.
    v.try_reserve_exact(RESERVE)
        .map_err(|e| format!("reserving {} MiB: {e}", RESERVE >> 20))?;
    ensure(v.capacity() >= RESERVE, || {
        format!("capacity {}", v.capacity())
    })?;
    let address = v.as_ptr() as usize;
    drop(v);
    Ok(format!("{} MiB at {address:#x}, untouched", RESERVE >> 20))
}
