//! Name parts for demo customers: common Norwegian names, paired at random, with
//! `@example.invalid` addresses so nobody mistakes them for real people.

pub const FIRST: &[&str] = &[
    "Kari", "Ola", "Ingrid", "Lars", "Sofie", "Jonas", "Nora", "Emil", "Ida", "Magnus", "Thea", "Henrik", "Maja",
    "Sander", "Emma", "Mathias", "Sara", "Tobias", "Ingeborg", "Håkon", "Solveig", "Øystein", "Astrid", "Sindre",
    "Marit", "Eirik", "Tuva", "Jørgen", "Hanne", "Bjørn", "Agnieszka", "Piotr", "Tomasz", "Katarzyna", "Aušra", "Jonas",
];

pub const LAST: &[&str] = &[
    "Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
    "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen", "Andreassen", "Jacobsen",
    "Dahl", "Jørgensen", "Halvorsen", "Lund", "Sørensen", "Bakken", "Kowalski", "Nowak", "Kazlauskas", "Strand",
];

/// Lower-case ASCII for an email local part: å→a, æ→ae, ø→o, š→s.
pub fn ascii(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .flat_map(|c| match c {
            'å' | 'ä' => vec!['a'],
            'æ' => vec!['a', 'e'],
            'ø' | 'ö' => vec!['o'],
            'š' => vec!['s'],
            'ž' => vec!['z'],
            c if c.is_ascii_alphanumeric() => vec![c],
            _ => vec![],
        })
        .collect()
}
