//! The Merkle tree against Certificate Transparency's published vectors
//! (the roots of the trees of 1 to 8 of its eight leaf inputs) and against
//! RFC 9162's definitions written as plain recursion: every root, inclusion
//! proof and consistency proof for trees of up to 64 leaves, each verified,
//! and wrong proofs, indexes and sizes rejected.

use ultracore_audit::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Frontier, Hash, Nodes,
    ProofError, Tree,
};

fn hex(s: &str) -> Hash {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Certificate Transparency's test leaves and the roots of the trees of
/// the first 0..=8 of them (as published with its reference code).
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_of_the_published_vectors() {
    let mut tree = Tree::new();
    let mut frontier = Frontier::new();
    assert_eq!(tree.root(), hex(CT_ROOTS[0]));
    assert_eq!(empty_root(), hex(CT_ROOTS[0]));
    for (i, leaf) in CT_LEAVES.iter().enumerate() {
        tree.append(&unhex(leaf));
        frontier.append(leaf_hash(&unhex(leaf)), |_, _, _| {});
        assert_eq!(tree.root(), hex(CT_ROOTS[i + 1]), "size {}", i + 1);
        assert_eq!(frontier.root(), hex(CT_ROOTS[i + 1]), "size {}", i + 1);
    }
    for size in 0..=8 {
        assert_eq!(tree.root_at(size).unwrap(), hex(CT_ROOTS[size as usize]));
    }
}

// RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 as written.

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = split(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

#[test]
fn every_inclusion_proof_up_to_64_leaves() {
    let d = leaves(64);
    let mut tree = Tree::new();
    for l in &d {
        tree.append_hash(*l);
    }
    for n in 1..=64u64 {
        let root = tree.root_at(n).unwrap();
        assert_eq!(root, mth(&d[..n as usize]), "root of {n}");
        for m in 0..n {
            let proof = tree.inclusion_proof(m, n).unwrap();
            assert_eq!(
                proof,
                path(m as usize, &d[..n as usize]),
                "path of {m} in {n}"
            );
            assert!(proof.len() <= (64 - (n - 1).leading_zeros()) as usize);
            verify_inclusion(&d[m as usize], m, n, &proof, &root).unwrap();

            // Wrong leaf, index, size, root or path: rejected.
            let other = leaf_hash(b"not a leaf of this tree");
            assert!(verify_inclusion(&other, m, n, &proof, &root).is_err());
            if n > 1 {
                let wrong = (m + 1) % n;
                assert!(
                    verify_inclusion(&d[m as usize], wrong, n, &proof, &root).is_err(),
                    "index {wrong} for leaf {m} of {n}"
                );
            }
            // The size is bound by the root (a checkpoint signs both): the
            // proof of size n does not verify against the root of size n + 1
            // unless the two paths are the same.
            if n < 64 && tree.inclusion_proof(m, n + 1).unwrap() != proof {
                let bigger = tree.root_at(n + 1).unwrap();
                assert!(
                    verify_inclusion(&d[m as usize], m, n + 1, &proof, &bigger).is_err(),
                    "the path of leaf {m} in {n} against the root of {}",
                    n + 1
                );
            }
            if !proof.is_empty() {
                let mut bad = proof.clone();
                bad[0][0] ^= 1;
                assert_eq!(
                    verify_inclusion(&d[m as usize], m, n, &bad, &root),
                    Err(ProofError::RootMismatch)
                );
                assert!(verify_inclusion(&d[m as usize], m, n, &proof[1..], &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(&d[m as usize], m, n, &longer, &root).is_err());
        }
        assert_eq!(
            tree.inclusion_proof(n, n),
            Err(ProofError::IndexOutOfRange { index: n, size: n })
        );
    }
    assert_eq!(
        tree.inclusion_proof(0, 65),
        Err(ProofError::SizeOutOfRange {
            asked: 65,
            have: 64
        })
    );
}

#[test]
fn every_consistency_proof_up_to_64_leaves() {
    let d = leaves(64);
    let mut tree = Tree::new();
    for l in &d {
        tree.append_hash(*l);
    }
    for n in 1..=64u64 {
        let second = tree.root_at(n).unwrap();
        for m in 1..=n {
            let first = tree.root_at(m).unwrap();
            let proof = tree.consistency_proof(m, n).unwrap();
            let want = if m == n {
                Vec::new()
            } else {
                subproof(m as usize, &d[..n as usize], true)
            };
            assert_eq!(proof, want, "proof {m} -> {n}");
            verify_consistency(m, n, &proof, &first, &second).unwrap();

            // A wrong root, size or hash: rejected.
            let other = leaf_hash(b"another tree");
            assert!(verify_consistency(m, n, &proof, &other, &second).is_err());
            assert!(verify_consistency(m, n, &proof, &first, &other).is_err());
            for (i, _) in proof.iter().enumerate() {
                let mut bad = proof.clone();
                bad[i][31] ^= 0x80;
                assert!(
                    verify_consistency(m, n, &bad, &first, &second).is_err(),
                    "hash {i} of {m} -> {n} flipped"
                );
            }
            if m < n {
                assert!(verify_consistency(m, n, &proof[1..], &first, &second).is_err());
                if m + 1 < n {
                    assert!(verify_consistency(m + 1, n, &proof, &first, &second).is_err());
                }
            }
        }
        // From the empty tree: an empty proof.
        assert!(tree.consistency_proof(0, n).unwrap().is_empty());
        verify_consistency(0, n, &[], &empty_root(), &second).unwrap();
    }
    assert_eq!(
        tree.consistency_proof(5, 4),
        Err(ProofError::SizesOutOfOrder {
            first: 5,
            second: 4
        })
    );
}

#[test]
fn the_frontier_reports_every_full_subtree_once() {
    let mut frontier = Frontier::new();
    let mut seen = Vec::new();
    for i in 0..8u64 {
        frontier.append(leaf_hash(&i.to_be_bytes()), |level, index, _| {
            seen.push((level, index))
        });
    }
    // 8 leaves, 4 pairs, 2 quads, 1 root of 8.
    assert_eq!(seen.len(), 15);
    for (level, count) in [(0, 8), (1, 4), (2, 2), (3, 1)] {
        let mut at: Vec<u64> = seen
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, i)| *i)
            .collect();
        at.sort_unstable();
        assert_eq!(at, (0..count).collect::<Vec<_>>(), "level {level}");
    }
}
