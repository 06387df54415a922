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
// pointer pressed with its main button (the left mouse button, a finger, a pen's tip: button 0) that
// went down on a range input of the tab is down, that input's `input` events stop at the window (capture phase), the number box
// beside it and the track's fill following the thumb by hand. Each held range is kept under its
// pointer's pointerId; when that pointer goes up (or is cancelled) its range gets one `input` event
// with its final value, if that changed since the pointer went down: one gradio input event, one
// render. Another pointer's up leaves it held; each finger of a multi-touch holds its own slider (a
// second finger left unheld would, under 4.40, render last with the first slider's value from before
// its release: each slider's event takes all values when it is triggered). A release the page never sees (the window lost focus,
// a context menu took the mouseup) is made up for: on blur and contextmenu every held range is
// released, on a key pressed in a held range that range is (so an arrow key's step then passes as
// it is), and a pointer going down where a range is still held sends it first. Other buttons,
// arrow keys and typed values pass as they are. Not in the paper: a UI matter
// (the Pointer Events spec, https://www.w3.org/TR/pointerevents3/, for pointerId/isPrimary/button).
(() => {
    const TAB = '#portraitgan-editor'; // build_editor's row, with the tab's elem_id prefix
    const held = new Map(); // pointerId -> {range, value at pointerdown}, while that pointer is down

    const rangeOf = event => {
        const target = event.composedPath ? event.composedPath()[0] : event.target;
        const range = target instanceof HTMLInputElement && target.type === 'range';
        return range && target.closest(TAB) ? target : null;
    };
    const holderOf = range => {
        for (const [pointerId, hold] of held) if (hold.range === range) return pointerId;
        return null;
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

    // The pointer's range gets its final value: gradio takes it from this one input event.
    const release = pointerId => {
        const hold = held.get(pointerId);
        if (hold === undefined) return;
        held.delete(pointerId);
        if (hold.range.value !== hold.value) hold.range.dispatchEvent(new Event('input', {bubbles: true}));
    };
    const releaseAll = () => [...held.keys()].forEach(release);

    addEventListener('pointerdown', event => {
        release(event.pointerId); // its own up was lost (a mouse's pointerId stays the same)
        const range = rangeOf(event);
        if (range === null) return;
        const holder = holderOf(range);
        if (holder !== null) release(holder); // held by a pointer whose up was lost
        if (event.button === 0) held.set(event.pointerId, {range, value: range.value}); // not another button
    }, true);
    addEventListener('input', event => {
        const range = rangeOf(event);
        if (range !== null && holderOf(range) !== null) {
            event.stopImmediatePropagation();
            follow(range);
        }
    }, true);
    addEventListener('pointerup', event => release(event.pointerId), true);
    addEventListener('pointercancel', event => release(event.pointerId), true);
    addEventListener('blur', releaseAll);
    addEventListener('contextmenu', releaseAll, true);
    addEventListener('keydown', event => {
        const range = rangeOf(event);
        const holder = range === null ? null : holderOf(range);
        if (holder !== null) release(holder);
    }, true);
})();
