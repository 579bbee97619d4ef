//! The closed captions the video carries (CEA-608/708 in the H.264 stream) as the manifests
//! declare them: an HLS `CLOSED-CAPTIONS` group, a DASH `Accessibility` descriptor.

/// HLS's group of closed-caption renditions.
pub(crate) const GROUP: &str = "cc";

const DASH_608: &str = "urn:scte:dash:cc:cea-608:2015";
const DASH_708: &str = "urn:scte:dash:cc:cea-708:2015";

/// The caption channels the video rungs carry.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ClosedCaptions {
    /// HLS `INSTREAM-ID`s, 608 first: `CC1`…`CC4`, `SERVICE1`…`SERVICE63`.
    pub channels: Vec<String>,
    /// The language they are declared in: the default audio rendition's (the stream does
    /// not say; captions of an event follow its main language).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl ClosedCaptions {
    pub(crate) fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// One `EXT-X-MEDIA` per channel. Off unless chosen (`DEFAULT=NO`); a viewer who asked
    /// for captions gets them (`AUTOSELECT=YES`).
    pub(crate) fn hls_renditions(&self) -> Vec<String> {
        let name = self.language.as_deref().and_then(crate::language::name);
        self.channels
            .iter()
            .map(|id| {
                let label = match name {
                    Some(n) if self.channels.len() == 1 => n.to_owned(),
                    Some(n) => format!("{n} ({id})"),
                    None => id.clone(),
                };
                let mut tag = format!("#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"{GROUP}\",NAME=\"{label}\"");
                if let Some(language) = &self.language {
                    tag.push_str(&format!(",LANGUAGE=\"{language}\""));
                }
                tag.push_str(&format!(",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID=\"{id}\""));
                tag
            })
            .collect()
    }

    /// The `Accessibility` descriptors of the video set (SCTE 214-1, as DASH-IF IOP
    /// 6.4.3 uses them): `(schemeIdUri, value)`, e.g. `CC1=en;CC3=en` and `1=lang:en`.
    pub(crate) fn dash_descriptors(&self) -> Vec<(&'static str, String)> {
        let language = self.language.as_deref().unwrap_or("und");
        let cea608: Vec<String> =
            self.channels.iter().filter(|c| c.starts_with("CC")).map(|c| format!("{c}={language}")).collect();
        let cea708: Vec<String> = self
            .channels
            .iter()
            .filter_map(|c| c.strip_prefix("SERVICE"))
            .map(|n| format!("{n}=lang:{language}"))
            .collect();
        [(DASH_608, cea608), (DASH_708, cea708)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(scheme, v)| (scheme, v.join(";")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_is_a_rendition_named_by_its_language() {
        let cc = ClosedCaptions { channels: vec!["CC1".into(), "SERVICE1".into()], language: Some("en".into()) };
        assert_eq!(
            cc.hls_renditions(),
            [
                "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"English (CC1)\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID=\"CC1\"",
                "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"English (SERVICE1)\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID=\"SERVICE1\"",
            ]
        );
        assert_eq!(cc.dash_descriptors(), [(DASH_608, "CC1=en".to_owned()), (DASH_708, "1=lang:en".to_owned())]);
        let bare = ClosedCaptions { channels: vec!["CC1".into()], language: None };
        assert!(bare.hls_renditions()[0].contains("NAME=\"CC1\",DEFAULT=NO"));
    }
}
