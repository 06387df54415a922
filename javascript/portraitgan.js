// PortraitGAN's tab switch for the Stable Diffusion WebUI (A1111, Forge, reForge).
//
// The host loads every javascript/*.js of an extension into its page. A "Send to <tab>" button made
// with the host's paste-params module (modules/infotext_utils.py) calls the JS function
// switch_to_<tabname> after copying the image; the host defines those of its own tabs
// (switch_to_img2img, switch_to_inpaint, switch_to_extras in javascript/ui.js), an extension defines
// its own. This one selects the top-level tab labelled "PortraitGAN": the "Send to PortraitGAN"
// buttons beside the txt2img and img2img galleries call it (portraitgan_hub_webui/tab.py,
// on_after_component). tests/test_webui_browser.py runs it in Chromium under gradio 3.41 and 4.40.

function switch_to_portraitgan() {
    const tabs = gradioApp().querySelector('#tabs');
    if (tabs) {
        // As the host's own switch_to_* do (gradio 3.41 and 4.40): the tab buttons are the first
        // buttons inside #tabs; take the one with our label.
        for (const button of tabs.querySelectorAll('button')) {
            if (button.textContent.trim() === 'PortraitGAN') {
                button.click();
                break;
            }
        }
    }
    return Array.from(arguments);
}
