// PortraitGAN's page script for the Stable Diffusion WebUI (A1111, Forge, reForge): the tab switch and
// one render per slider drag. The host loads every javascript/*.js of an extension into its page's
// <head> (modules/ui_gradio_extensions.py); tests/test_webui_browser.py runs this file in Chromium
// under gradio 3.41 and 4.40.

// The tab switch. A "Send to <tab>" button made with the host's paste-params module
// (modules/infotext_utils.py) calls the JS function switch_to_<tabname> after copying the image; the
// host defines those of its own tabs (switch_to_img2img, switch_to_inpaint, switch_to_extras in
// javascript/ui.js), an extension defines its own. This one selects the top-level tab labelled
// "PortraitGAN": the "Send to PortraitGAN" buttons beside the txt2img and img2img galleries call it
// (portraitgan_hub_webui/tab.py, on_after_component).
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

// One slider drag, one render (issue 27 item 8: only the last render of a slider move is shown).
// Under gradio 3.41 and 4.40 a slider sends an input event at every step of a drag, and the tab
// renders on a slider's input events (space/compat.py, slider_renders), so a drag would show the
// pictures rendered on the way. gradio 6 (the app) skips them in its event's js function; here that
// would not do: under 4.40 an event with a js function is sent at every trigger, its trigger_mode
// ("always_last", which keeps a held arrow key from queuing a render per repeat) left out (the
// frontend's Blocks.svelte). So the drag's steps are held back before gradio sees them: while a
// pointer (mouse button or finger) that went down on a range input of the tab is down, that input's
// `input` events stop at the window (capture phase), the number box beside it and the track's fill
// following the thumb by hand; when the pointer goes up (or is cancelled) one `input` event goes to
// the slider with its final value: one gradio input event, one render. Arrow keys and typed values
// pass as they are. Not in the paper: a UI matter.
(() => {
    const TAB = '#portraitgan-editor'; // build_editor's row, with the tab's elem_id prefix
    let held = null; // the range input a pointer went down on, while it is down

    const rangeOf = event => {
        const target = event.composedPath ? event.composedPath()[0] : event.target;
        const range = target instanceof HTMLInputElement && target.type === 'range';
        return range && target.closest(TAB) ? target : null;
    };

    // What gradio would draw for the value it has not been told yet: the number box beside the
    // range (the nearest one around it) and, under 4.40, the track's fill (the range's
    // background-size, as its Slider sets it).
    const follow = range => {
        let box = range.parentElement;
        while (box && !box.querySelector('input[type=number]')) box = box.parentElement;
        if (box) box.querySelector('input[type=number]').value = range.value;
        if (range.style.backgroundSize) {
            const span = Number(range.max) - Number(range.min);
            const filled = span === 0 ? 0 : (Number(range.value) - Number(range.min)) / span;
            range.style.backgroundSize = `${filled * 100}% 100%`;
        }
    };

    addEventListener('pointerdown', event => {
        held = rangeOf(event);
    }, true);
    addEventListener('input', event => {
        if (held !== null && rangeOf(event) === held) {
            event.stopImmediatePropagation();
            follow(held);
        }
    }, true);
    const release = () => {
        if (held === null) return;
        const range = held;
        held = null;
        range.dispatchEvent(new Event('input', {bubbles: true})); // gradio takes the value from here
    };
    addEventListener('pointerup', release, true);
    addEventListener('pointercancel', release, true);
})();
