//! The filter's texts in every language it ships (`data/locale/*.ini`): complete, with the same
//! placeholders as English, translated rather than copied, and shown by OBS: the headless host
//! started in each language (`obs_startup(locale)`, as the OBS application does with its UI
//! language) lists the filter's properties with that language's labels.

mod common;

use backdrop_core::settings::{Kind, TABLE};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The languages shipped besides en-US.
const LOCALES: [&str; 8] = [
    "de-DE", "es-ES", "fr-FR", "ja-JP", "ko-KR", "pt-BR", "ru-RU", "zh-CN",
];

fn locale_dir() -> PathBuf {
    common::root().join("data/locale")
}

/// Reads an OBS locale file: `Key="value"` per line.
fn read(locale: &str) -> BTreeMap<String, String> {
    let path = locale_dir().join(format!("{locale}.ini"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{locale}: not Key=\"value\": {l}"));
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{locale}: value not quoted: {l}"));
            assert!(!v.contains('"'), "{locale}: a quote inside {k}");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The `%N` placeholders of a text, in order of N.
fn placeholders(text: &str) -> Vec<char> {
    let mut p: Vec<char> = text
        .match_indices('%')
        .filter_map(|(i, _)| text[i + 1..].chars().next())
        .filter(char::is_ascii_digit)
        .collect();
    p.sort_unstable();
    p
}

#[test]
fn every_locale_has_every_key_with_its_placeholders_and_is_translated() {
    let english = read("en-US");
    for locale in LOCALES {
        let texts = read(locale);
        let keys: Vec<&String> = texts.keys().collect();
        assert_eq!(
            keys,
            english.keys().collect::<Vec<_>>(),
            "{locale}: keys differ from en-US"
        );
        let mut same = Vec::new();
        for (key, en) in &english {
            let t = &texts[key];
            assert!(!t.trim().is_empty(), "{locale}: {key} is empty");
            assert_eq!(
                placeholders(t),
                placeholders(en),
                "{locale}: {key} placeholders"
            );
            if t == en {
                same.push(key.as_str());
            }
        }
        // The brand stays; a word or two can be the same in a language ("Transparent").
        println!("{locale}: {} keys, same as English: {same:?}", texts.len());
        assert!(
            same.len() * 10 <= english.len(),
            "{locale}: {} of {} texts left in English: {same:?}",
            same.len(),
            english.len()
        );
    }
}

#[test]
fn every_setting_and_choice_has_an_english_text() {
    let english = read("en-US");
    let mut keys: Vec<&str> = Vec::new();
    for row in TABLE {
        keys.push(row.label);
        match row.kind {
            Kind::Choice { choices, .. } => keys.extend(choices.iter().map(|(_, label)| *label)),
            Kind::Path { filter } => keys.push(filter),
            _ => {}
        }
    }
    for key in keys {
        assert!(english.contains_key(key), "no en-US text for {key}");
    }
}

#[test]
fn obs_shows_the_filters_labels_in_each_language() {
    let video = require!(video);
    let plugin = require!(plugin);
    for locale in LOCALES {
        let texts = read(locale);
        let run = common::host::run(
            &format!("locale_{locale}"),
            &plugin,
            &[
                "--input",
                video.to_str().unwrap(),
                "--frames",
                "10",
                "--mode",
                "color",
                "--locale",
                locale,
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{locale}: {}", run.stderr);
        assert!(
            run.log().contains(&format!("locale {locale}")),
            "{locale}: the plugin was not given the locale"
        );
        let properties = run.report["properties"].as_array().expect("properties");
        for row in TABLE {
            let shown = properties
                .iter()
                .find(|p| p["name"] == row.key)
                .unwrap_or_else(|| panic!("{locale}: no property {}", row.key));
            assert_eq!(
                shown["description"].as_str(),
                Some(texts[row.label].as_str()),
                "{locale}: {}",
                row.key
            );
        }
        let modes: Vec<&str> = properties
            .iter()
            .find(|p| p["name"] == "mode")
            .and_then(|p| p["items"].as_array())
            .expect("mode items")
            .iter()
            .filter_map(|i| i["name"].as_str())
            .collect();
        assert_eq!(modes[0], texts["Mode.Blur"], "{locale}");
        println!("{locale}: mode list {modes:?}");
    }
}
