//! Readable segment names from centroids: each feature whose centroid lies at least half a
//! standard deviation from the average customer becomes a trait ("price-sensitive", "young");
//! the two strongest traits qualify a noun ("families" when children stand out, "retirees" for
//! an older segment, otherwise "customers").

use super::Segment;

/// Half a standard deviation: what counts as standing out.
const STANDS_OUT: f64 = 0.5;

/// The word for a feature (by [`super::SEGMENT_FEATURES`] index) above / below average.
fn trait_words(feature: usize) -> (&'static str, &'static str) {
    match feature {
        0 => ("older", "young"),
        1 => ("high-income", "low-income"),
        2 => ("", "childless"),
        3 => ("active-buying", "inactive"),
        4 => ("long-uncontacted", "recently contacted"),
        5 => ("price-sensitive", "quality-minded"),
        6 => ("often-called", "rarely-called"),
        _ => ("", ""),
    }
}

/// Names every segment (descriptions and unique identifier names).
pub(super) fn name_all(segments: &mut [Segment]) {
    let mut used = std::collections::HashSet::new();
    for s in segments.iter_mut() {
        let (description, extra) = describe(s);
        let mut description = description;
        if used.contains(&description) {
            if let Some(e) = extra {
                description = format!("{e} {description}");
            }
        }
        let mut name = slug(&description);
        let base = name.clone();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        used.insert(description.clone());
        used.insert(name.clone());
        s.description = description;
        s.name = name;
    }
}

/// The description, and one more trait to tell two alike segments apart.
fn describe(s: &Segment) -> (String, Option<&'static str>) {
    let (age_z, children_z) = (s.z[0], s.z[2]);
    let noun = if children_z >= STANDS_OUT {
        "families"
    } else if age_z >= STANDS_OUT && s.centroid[0] >= 60.0 {
        "retirees"
    } else {
        "customers"
    };
    let mut traits: Vec<(f64, &'static str)> =
        s.z.iter()
            .enumerate()
            .filter(|&(j, z)| z.abs() >= STANDS_OUT && !(j == 2 && *z > 0.0))
            .filter(|&(j, _)| !(j == 0 && noun == "retirees"))
            .filter(|&(j, _)| !(j == 2 && noun == "retirees"))
            .map(|(j, &z)| {
                let (up, down) = trait_words(j);
                (z.abs(), if z > 0.0 { up } else { down })
            })
            .filter(|(_, w)| !w.is_empty())
            .collect();
    traits.sort_by(|a, b| b.0.total_cmp(&a.0));
    let words: Vec<&str> = traits.iter().take(2).map(|t| t.1).collect();
    let extra = traits.get(2).map(|t| t.1);
    let description = if words.is_empty() && noun == "customers" {
        "average customers".to_string()
    } else {
        let mut w = words;
        w.push(noun);
        w.join(" ")
    };
    (description, extra)
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(z: [f64; 7], age: f64) -> Segment {
        let mut centroid = vec![0.0; 7];
        centroid[0] = age;
        Segment {
            index: 0,
            name: String::new(),
            description: String::new(),
            size: 1,
            centroid,
            z: z.to_vec(),
        }
    }

    #[test]
    fn names_read_like_people() {
        let mut s = vec![
            seg([-0.9, -0.6, 1.2, 0.0, 0.0, 1.1, 0.0], 35.0),
            seg([1.6, 0.0, -0.8, 0.0, 0.0, 0.6, 0.0], 68.0),
            seg([0.1, 0.2, 0.0, 0.0, 0.0, -0.1, 0.0], 45.0),
        ];
        name_all(&mut s);
        assert_eq!(s[0].description, "price-sensitive young families");
        assert_eq!(s[0].name, "price_sensitive_young_families");
        assert_eq!(s[1].description, "price-sensitive retirees");
        assert_eq!(s[2].description, "average customers");
    }
}
